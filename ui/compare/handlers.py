"""Handlers of the compare view: small functions from (session, event) to the new view.

Same conventions as ``ui.segment.handlers``: each handler works on the caller's own
``CompareSession`` (from ``gr.State``), ``errors.guard`` turns any failure into a toast and
re-renders the unchanged session, and outputs are always ``VIEW_SIZE`` values (see
``ui.compare.view``). Per-model problems (weights missing, a prompt one model cannot take) are not
failures: they are shown on that model's card while the other models answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from sam_backends.ground_truth import load_mask
from sam_backends.images import image_digest, load_image
from ui.compare.exports import write_compare_downloads
from ui.compare.state import (
    MAX_MODELS,
    MIN_MODELS,
    CompareSession,
    encode_models,
    rerun_stale,
    run_prompts,
    select_models,
    unavailable_reason,
)
from ui.compare.values import agreement_value, cards_value, table_rows
from ui.context import AppContext
from ui.errors import UserError, guard
from ui.event_payloads import (
    box_from_event,
    check_point_cap,
    object_id_from_event,
    point_from_event,
)
from ui.segment import values as views

VIEW_SIZE = 13  # state, canvas, objects, cards, agreement, table, status, undo, redo, clear,
#                 estimates, zip download, csv download
FOREGROUND = "Foreground (object)"
BACKGROUND = "Background (not object)"
SESSION_SUFFIX = ":compare"  # the segment view uses the bare session hash


def default_models(ctx: AppContext) -> list[str]:
    """``sam-vit-b`` vs ``sam-vit-h`` when offered, else the first two offered models."""
    preferred = [m for m in ("sam-vit-b", "sam-vit-h") if m in ctx.model_ids]
    if len(preferred) == 2:
        return preferred
    return ctx.model_ids[:MIN_MODELS]


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    rows = []
    for model_id in ctx.model_ids:
        status = ctx.status(model_id)
        rows.append((status.display_name + ("" if status.present else " · not downloaded"),
                     model_id))
    return rows


def estimates_markdown(ctx: AppContext, models: Sequence[str], digest: str = "") -> str:
    """Before running: per model, whether it can run and how long encoding should take."""
    lines = []
    for model_id in models:
        name = ctx.spec(model_id).display_name
        reason = unavailable_reason(ctx, model_id)
        if reason is None and digest and ctx.cached(model_id, digest):
            lines.append(f"- **{name}**: image already encoded (cached).")
            continue
        estimate = ctx.encode_timings.estimate(model_id)
        reference = (ctx.spec(estimate.reference).display_name
                     if estimate.reference in ctx.model_ids else estimate.reference)
        if estimate.seconds is None:
            timing = "no encode measured on this machine yet"
        else:
            timing = f"encoding takes {estimate.text(reference)}"
        if reason is not None:
            lines.append(f"- ⚠️ {reason}" + (f" Once there, {timing}." if estimate.seconds
                                              else ""))
        else:
            flag = "⏳ " if estimate.slow else ""
            lines.append(f"- {flag}**{name}**: {timing}.")
    return ("**Expected time on this machine** (one encode per image and model):\n\n"
            + "\n".join(lines))


class CompareHandlers:
    """The compare view's event handlers, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, examples: list[Path]) -> None:
        self.ctx = ctx
        self.examples = examples
        operator = ctx.config.shows_operator_details
        view = guard(self._fallback, operator)
        self.upload = view(self._upload)
        self.example = view(self._example)
        self.change_models = view(self._change_models)
        self.point = view(self._point)
        self.box = view(self._box)
        self.pick_object = view(self._pick_object)
        self.remove_object = view(self._remove_object)
        self.new_object = view(self._new_object)
        self.undo = view(self._undo)
        self.redo = view(self._redo)
        self.clear = view(self._clear)
        self.ground_truth = view(self._ground_truth)
        self.clear_ground_truth = view(self._clear_ground_truth)
        self.export = guard(lambda *args: (gr.skip(), gr.skip()), operator)(self._export)

    # --- views -------------------------------------------------------------------------------

    def names(self, session: CompareSession) -> dict[str, str]:
        return {m: self.ctx.spec(m).display_name for m in session.models}

    def session_for(self, session: CompareSession | None, request: gr.Request | None,
                    models: Sequence[str] | None = None) -> CompareSession:
        """The caller's compare session, created (and registered for release) on first use."""
        if session is None or session.released:
            base = getattr(request, "session_hash", None) or f"anon-{id(request)}"
            chosen = self._validated(models) if models else default_models(self.ctx)
            session = CompareSession(base + SESSION_SUFFIX, chosen)
            self.ctx.sessions.track(session)
        return session

    def _validated(self, models: Sequence[str] | None) -> list[str]:
        chosen = list(dict.fromkeys(models or ()))
        if not MIN_MODELS <= len(chosen) <= MAX_MODELS:
            raise UserError(f"Choose between {MIN_MODELS} and {MAX_MODELS} models to compare "
                            f"(now {len(chosen)}).", "Pick 2 to 6 models")
        for model_id in chosen:
            self.ctx.entry(model_id)
        offered = self.ctx.model_ids  # cards in the picker's order, however they were ticked
        return sorted(chosen, key=offered.index)

    def view(self, session: CompareSession, hint: str | None = None,
             notice: str | None = None) -> tuple:
        """The outputs for ``session``; ``notice`` is shown above the time estimates."""
        names = self.names(session)
        estimates = {m: self.ctx.encode_timings.estimate(m) for m in session.models}
        active = session.workspace.active
        canvas = views.canvas_value(session, hint)
        status = self._status(session, names)
        stale = (gr.update(value=None, interactive=False),
                 gr.update(value=None, interactive=False))
        return (
            session, canvas, views.objects_value(session),
            cards_value(session, names, estimates), agreement_value(session, names),
            table_rows(session, names), status,
            gr.update(interactive=session.has_image and active.can_undo),
            gr.update(interactive=session.has_image and active.can_redo),
            gr.update(interactive=session.has_image and not active.is_empty),
            (f"⚠️ {notice}\n\n" if notice else "")
            + estimates_markdown(self.ctx, session.models, session.digest),
        ) + stale  # fmt: skip

    def _status(self, session: CompareSession, names: dict[str, str]) -> str:
        if not session.has_image:
            return f"Comparing **{' vs '.join(names.values())}**."
        count = len(session.workspace.objects)
        return (f"Comparing **{' vs '.join(names.values())}** on {count} object"
                f"{'s' if count > 1 else ''}. The canvas shows "
                f"**{names[session.canvas_model]}**'s masks; every model's answer is below.")

    def _fallback(self, session: CompareSession | None, *_: Any) -> tuple:
        if session is None:
            return (None,) + tuple(gr.skip() for _ in range(VIEW_SIZE - 1))
        return self.view(session)

    # --- image and models --------------------------------------------------------------------

    def _upload(self, session: CompareSession | None, path: str | None, models: list[str],
                request: gr.Request, progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, models)
        if not path:
            return self.view(session)
        return self._open(session, Path(path), progress)

    def _example(self, session: CompareSession | None, models: list[str], evt: gr.SelectData,
                 request: gr.Request, progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, models)
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not 0 <= index < len(self.examples):
            raise UserError("That example does not exist any more; pick another one.")
        return self._open(session, self.examples[index], progress)

    def _open(self, session: CompareSession, path: Path, progress: Any) -> tuple:
        progress(0.02, desc="Reading the image…")
        image = load_image(path, max_pixels=self.ctx.config.max_image_pixels)
        session.set_image(image, image_digest(image), path.name)
        encode_models(self.ctx, session, progress)
        return self.view(session, "Click the object or drag a box: every model answers.")

    def _change_models(self, session: CompareSession | None, models: list[str],
                       request: gr.Request, progress=gr.Progress()) -> tuple:
        count = len(set(models or ()))
        if count < MIN_MODELS:  # a normal step while ticking boxes: say so, no error toast
            session = self.session_for(session, request)
            return self.view(session, notice=(
                f"Tick at least {MIN_MODELS} models (now {count}); still comparing the "
                "previous selection."))
        chosen = self._validated(models)
        session = self.session_for(session, request, chosen)
        select_models(session, chosen)
        if session.has_image:
            encode_models(self.ctx, session, progress)
            rerun_stale(self.ctx, session, progress)
        return self.view(session)

    # --- prompts -----------------------------------------------------------------------------

    def _need_image(self, session: CompareSession) -> None:
        if not session.has_image:
            raise UserError("Upload an image first (or pick an example).", "No image")

    def _point(self, session: CompareSession | None, mode: str, evt: gr.EventData,
               request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        self._need_image(session)
        click = point_from_event(getattr(evt, "_data", None))
        current = session.workspace.active.prompts
        check_point_cap(len(current.points), self.ctx.config.max_points)
        background = click.background or mode == BACKGROUND
        prompts = current.with_point(click.x, click.y, 0 if background else 1)
        run_prompts(self.ctx, session, prompts)
        return self.view(session)

    def _box(self, session: CompareSession | None, evt: gr.EventData,
             request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        self._need_image(session)
        box = box_from_event(getattr(evt, "_data", None))
        run_prompts(self.ctx, session, session.workspace.active.prompts.with_box(box))
        return self.view(session)

    # --- objects and history -----------------------------------------------------------------

    def _pick_object(self, session: CompareSession | None, evt: gr.EventData,
                     request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        object_id = self._object_id(session, evt)
        session.apply(lambda ws: ws.select(object_id))
        return self.view(session)

    def _remove_object(self, session: CompareSession | None, evt: gr.EventData,
                       request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        object_id = self._object_id(session, evt)
        session.apply(lambda ws: ws.delete(object_id))
        return self.view(session)

    @staticmethod
    def _object_id(session: CompareSession, evt: gr.EventData) -> int:
        known = [o.object_id for o in session.workspace.objects]
        return object_id_from_event(getattr(evt, "_data", None), known)

    def _new_object(self, session: CompareSession | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.apply(lambda ws: ws.new_object())
        return self.view(session)

    def _history(self, session: CompareSession, change: str) -> tuple:
        session.apply(lambda ws: ws.update_active(lambda o: getattr(o, change)()))
        rerun_stale(self.ctx, session)
        return self.view(session)

    def _undo(self, session: CompareSession | None, request: gr.Request) -> tuple:
        return self._history(self.session_for(session, request), "undo")

    def _redo(self, session: CompareSession | None, request: gr.Request) -> tuple:
        return self._history(self.session_for(session, request), "redo")

    def _clear(self, session: CompareSession | None, request: gr.Request) -> tuple:
        return self._history(self.session_for(session, request), "clear")

    # --- ground truth and downloads ----------------------------------------------------------

    def _ground_truth(self, session: CompareSession | None, path: str | None,
                      request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if not path:
            return self.view(session)
        self._need_image(session)
        mask = load_mask(Path(path))
        height, width = session.image.shape[:2]
        if mask.shape != (height, width):
            raise UserError(
                f"The ground-truth mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{width}x{height}; upload the mask made for this image.", "Mask does not fit")
        if not mask.any():
            raise UserError("The ground-truth mask is empty: non-zero pixels mark the object.",
                            "Empty mask")
        session.ground_truth = mask
        session.ground_truth_name = Path(path).name
        return self.view(session)

    def _clear_ground_truth(self, session: CompareSession | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.ground_truth = None
        session.ground_truth_name = ""
        return self.view(session)

    def _export(self, session: CompareSession | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if not session.has_image or not any(session.masks_of(m) for m in session.models):
            raise UserError("Segment something first: click or drag a box on the image.",
                            "Nothing to download yet")
        folder = session.export_dir(self.ctx.export_parent)
        paths = write_compare_downloads(folder, session, self.names(session))
        return (gr.update(value=str(paths["zip"]), interactive=True),
                gr.update(value=str(paths["csv"]), interactive=True))
