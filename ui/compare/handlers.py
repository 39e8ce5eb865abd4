"""Handlers of the compare view: small functions from (session, event) to the new view.

Same conventions as ``ui.segment.handlers``: each handler works on the caller's own
``CompareSession`` (from ``gr.State``), ``feedback.guard`` turns any failure into a toast and
re-renders the unchanged session, and outputs are always ``VIEW_SIZE`` values (see
``ui.compare.view``). Per-model problems (weights missing, a prompt one model cannot take) are not
failures: they are shown on that model's card while the other models answer.

Handlers that run models are generators (``stream_guard``): they yield the whole view again each
time one more model has answered (``workbench.compare.state.run_prompts_steps``), so a slow model's
card fills in last instead of holding back every other card.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import gradio as gr

from sam_backends.evaluation.ground_truth import load_mask
from sam_backends.images import image_digest, load_image
from ui.feedback import guard, warn
from ui.widgets import models_panel
from workbench.compare.exports import write_compare_downloads
from workbench.compare.state import (
    MAX_MODELS,
    MIN_MODELS,
    CompareSession,
    encode_steps,
    rerun_stale_steps,
    run_prompts_steps,
    select_models,
    unavailable_reason,
)
from workbench.compare.values import agreement_value, cards_value, table_rows
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.event_payloads import (
    box_from_event,
    check_point_cap,
    object_id_from_event,
    point_from_event,
)
from workbench.segment import values as views

VIEW_SIZE = 14  # state, canvas, objects, cards, agreement, table, status, undo, redo, clear,
#                 estimates, zip download, csv download, canvas model switch
FOREGROUND = "Foreground (object)"
BACKGROUND = "Background (not object)"
SESSION_SUFFIX = ":compare"  # the segment view uses the bare session hash


def default_models(ctx: AppContext) -> list[str]:
    """The models ticked at first: only models whose weights are here. ``sam-vit-b`` vs
    ``sam-vit-h`` when both are, else the first two present ones in the picker's order (one,
    or none, when fewer are present: never an absent model)."""
    present = [m for m in ctx.model_ids if ctx.status(m).present]
    preferred = [m for m in ("sam-vit-b", "sam-vit-h") if m in present]
    if len(preferred) == 2:
        return preferred
    return present[:MIN_MODELS]


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The picker's (label, id) rows: absent and custom weights marked as in the Segment view."""
    return models_panel.choices(ctx)


def stream_guard(fallback: Callable[..., Any], operator: bool = False
                 ) -> Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]:
    """``ui.feedback.guard`` for generator handlers: a failure shows a toast and yields
    ``fallback(*args)`` (the session's view as it now is) as the last update."""

    def decorate(handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from handler(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                warn(exc, operator)
                yield fallback(*args)

        return run

    return decorate


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
        stream = stream_guard(self._fallback, operator)
        self.upload = stream(self._upload)
        self.example = stream(self._example)
        self.from_segment = stream(self._from_segment)
        self.change_models = stream(self._change_models)
        self.point = stream(self._point)
        self.box = stream(self._box)
        self.pick_object = view(self._pick_object)
        self.remove_object = view(self._remove_object)
        self.new_object = view(self._new_object)
        self.undo = stream(self._undo)
        self.redo = stream(self._redo)
        self.clear = stream(self._clear)
        self.show_on_canvas = view(self._show_on_canvas)
        self.ground_truth = view(self._ground_truth)
        self.clear_ground_truth = view(self._clear_ground_truth)
        self.export = guard(lambda *args: (gr.skip(), gr.skip()), operator)(self._export)
        self.download = guard(lambda *args: tuple(gr.skip() for _ in range(4)),
                              operator)(self._download)

    # --- views -------------------------------------------------------------------------------

    def names(self, session: CompareSession) -> dict[str, str]:
        return {m: self.ctx.spec(m).display_name for m in session.models}

    def session_for(self, session: CompareSession | None, request: gr.Request | None,
                    models: Sequence[str] | None = None) -> CompareSession:
        """The caller's compare session, created (and registered for release) on first use."""
        if session is None or session.released:
            base = getattr(request, "session_hash", None) or f"anon-{id(request)}"
            chosen = self._validated(models) if models else default_models(self.ctx)
            if not chosen:  # nothing is present: the cards will say why (never crash here)
                chosen = self.ctx.model_ids[:MIN_MODELS]
            session = CompareSession(base + SESSION_SUFFIX, chosen)
            self.ctx.sessions.track(session)
        return session

    def _validated(self, models: Sequence[str] | None) -> list[str]:
        chosen = list(dict.fromkeys(models or ()))
        if not MIN_MODELS <= len(chosen) <= MAX_MODELS:
            missing = "" if len(chosen) >= MIN_MODELS or not models_panel.missing_choices(
                self.ctx) else " Download one more under the picker to compare."
            raise UserError(f"Choose between {MIN_MODELS} and {MAX_MODELS} models to compare "
                            f"(now {len(chosen)}).{missing}", "Pick 2 to 6 models")
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
        ) + stale + (gr.update(choices=[(names[m], m) for m in session.models],
                               value=session.canvas_model),)  # fmt: skip

    def _status(self, session: CompareSession, names: dict[str, str]) -> str:
        if not session.has_image:
            return f"Comparing **{' vs '.join(names.values())}**."
        count = len(session.workspace.objects)
        waiting = [names[m] for m in session.models if m in session.pending]
        text = (f"Comparing **{' vs '.join(names.values())}** on {count} object"
                f"{'s' if count > 1 else ''}. The canvas shows "
                f"**{names[session.canvas_model]}**'s masks; every model's answer is below.")
        if waiting:
            text += f" ⏳ Still answering: {', '.join(waiting)}."
        return text

    def _fallback(self, session: CompareSession | None, *_: Any) -> tuple:
        if session is None:
            return (None,) + tuple(gr.skip() for _ in range(VIEW_SIZE - 1))
        return self.view(session)

    # --- image and models --------------------------------------------------------------------

    def _upload(self, session: CompareSession | None, path: str | None, models: list[str],
                request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        session = self.session_for(session, request, models)
        if not path:
            yield self.view(session)
            return
        yield from self._open(session, Path(path), progress)

    def _example(self, session: CompareSession | None, models: list[str], evt: gr.SelectData,
                 request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        session = self.session_for(session, request, models)
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not 0 <= index < len(self.examples):
            raise UserError("That example does not exist any more; pick another one.")
        yield from self._open(session, self.examples[index], progress)

    def _from_segment(self, session: CompareSession | None, segment: Any, models: list[str],
                      request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        """The Segment view's image (same pixels, same digest: its embeddings are shared)."""
        session = self.session_for(session, request, models)
        picture = getattr(segment, "picture", None)
        if picture is None:
            raise UserError("The Segment tab has no image yet: open one there first.",
                            "No image")
        session.set_image(picture.image, picture.digest, picture.name)
        yield from self._shown(session, progress)

    def _open(self, session: CompareSession, path: Path, progress: Any) -> Iterator[tuple]:
        progress(0.02, desc="Reading the image…")
        image = load_image(path, max_pixels=self.ctx.config.max_image_pixels)
        session.set_image(image, image_digest(image), path.name)
        yield from self._shown(session, progress)

    def _shown(self, session: CompareSession, progress: Any) -> Iterator[tuple]:
        hint = "Click the object or drag a box: every model answers."
        yield self.view(session, hint)  # the image at once; each card fills in as it encodes
        for _ in encode_steps(self.ctx, session, progress):
            yield self.view(session, hint)

    def _change_models(self, session: CompareSession | None, models: list[str],
                       request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        count = len(set(models or ()))
        if count < MIN_MODELS:  # a normal step while ticking boxes: say so, no error toast
            session = self.session_for(session, request)
            yield self.view(session, notice=(
                f"Tick at least {MIN_MODELS} models (now {count}); still comparing the "
                "previous selection."))
            return
        chosen = self._validated(models)
        session = self.session_for(session, request, chosen)
        select_models(session, chosen)
        yield self.view(session)
        if session.has_image:
            for _ in encode_steps(self.ctx, session, progress):
                yield self.view(session)
            yield from self._streamed(session, rerun_stale_steps(self.ctx, session, progress))

    def _streamed(self, session: CompareSession, steps: Iterator[str]) -> Iterator[tuple]:
        """The view after each model's answer (and once at the end, for empty runs)."""
        answered = False
        for _ in steps:
            answered = True
            yield self.view(session)
        if not answered:
            yield self.view(session)

    # --- prompts -----------------------------------------------------------------------------

    def _need_image(self, session: CompareSession) -> None:
        if not session.has_image:
            raise UserError("Upload an image first (or pick an example).", "No image")

    def _point(self, session: CompareSession | None, mode: str, evt: gr.EventData,
               request: gr.Request) -> Iterator[tuple]:
        session = self.session_for(session, request)
        self._need_image(session)
        click = point_from_event(getattr(evt, "_data", None))
        current = session.workspace.active.prompts
        check_point_cap(len(current.points), self.ctx.limits.max_points)
        background = click.background or mode == BACKGROUND
        prompts = current.with_point(click.x, click.y, 0 if background else 1)
        yield from self._streamed(session, run_prompts_steps(self.ctx, session, prompts))

    def _box(self, session: CompareSession | None, evt: gr.EventData,
             request: gr.Request) -> Iterator[tuple]:
        session = self.session_for(session, request)
        self._need_image(session)
        box = box_from_event(getattr(evt, "_data", None))
        prompts = session.workspace.active.prompts.with_box(box)
        yield from self._streamed(session, run_prompts_steps(self.ctx, session, prompts))

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

    def _history(self, session: CompareSession, change: str) -> Iterator[tuple]:
        session.apply(lambda ws: ws.update_active(lambda o: getattr(o, change)()))
        yield from self._streamed(session, rerun_stale_steps(self.ctx, session))

    def _undo(self, session: CompareSession | None, request: gr.Request) -> Iterator[tuple]:
        yield from self._history(self.session_for(session, request), "undo")

    def _redo(self, session: CompareSession | None, request: gr.Request) -> Iterator[tuple]:
        yield from self._history(self.session_for(session, request), "redo")

    def _clear(self, session: CompareSession | None, request: gr.Request) -> Iterator[tuple]:
        yield from self._history(self.session_for(session, request), "clear")

    def _show_on_canvas(self, session: CompareSession | None, model_id: str | None,
                        request: gr.Request) -> tuple:
        """The switch above the canvas: show that compared model's masks on it."""
        session = self.session_for(session, request)
        if model_id in session.models:
            session.canvas_choice = model_id
            session.sync_canvas()
        return self.view(session)

    # --- downloading absent models -----------------------------------------------------------

    def _download(self, models: list[str] | None, model_id: str | None,
                  progress=gr.Progress()) -> tuple:
        """Fetch an absent model's weights from the compare view, then tick it (when fewer
        than six are ticked). Outputs: picker, estimates, download picker, download button."""
        if not model_id:
            raise UserError("Pick the model to download first.", "No model chosen")
        models_panel.download_with_progress(self.ctx, model_id, progress)
        ticked = [m for m in (models or []) if m in self.ctx.model_ids]
        if model_id not in ticked and len(ticked) < MAX_MODELS:
            ticked.append(model_id)
        ticked = [m for m in self.ctx.model_ids if m in ticked]
        return (gr.update(choices=model_choices(self.ctx), value=ticked),
                estimates_markdown(self.ctx, ticked)) + download_updates(self.ctx)

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


def download_updates(ctx: AppContext) -> tuple[Any, Any]:
    """(download picker, download button) updates: hidden once every model is present."""
    missing = models_panel.missing_choices(ctx)
    value = missing[0][1] if missing else None
    return (gr.update(choices=missing, value=value, visible=bool(missing)),
            gr.update(visible=bool(missing)))
