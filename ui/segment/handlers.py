"""Handlers of the segment view: small functions from (session, event) to the new view.

Each handler works on the caller's own ``Session`` (from ``gr.State``), computes new immutable
values first and assigns them only when everything succeeded; ``feedback.guard`` turns any
failure into a toast and re-renders the unchanged session. Outputs are always the view (see
``ui.segment.view``), plus the model panel for model handlers.

Clicks and boxes do not come here: the canvas sends them to ``server.live_route`` and then
fires ``synced``, whose handler (``sync``) refreshes only the side panels. An upload is two
events: ``upload`` shows the image at once (with one "Encoding..." indicator on the canvas) and
``encode`` computes the embedding behind it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from sam_backends import DownloadError, Embedding
from sam_backends.images import image_digest, load_image
from ui.feedback import guard
from ui.sessions import client_address
from ui.widgets import models_panel
from workbench import inference
from workbench.context import AppContext
from workbench.errors import UserError, log
from workbench.event_payloads import (
    box_from_event,
    bulk_from_event,
    check_point_cap,
    index_from_event,
    object_id_from_event,
    point_from_event,
)
from workbench.objects import PromptSet, Removed
from workbench.segment.downloads import downloads_value
from workbench.segment.values import build_view, class_names, encodes
from workbench.session import Session

VIEW_SIZE = 9  # state, canvas, objects, candidates, status, undo, redo, clear, downloads
FOREGROUND = "Foreground (object)"
BACKGROUND = "Background (not object)"


class SegmentHandlers:
    """The segment view's event handlers, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, examples: list[Path]) -> None:
        self.ctx = ctx
        self.examples = examples
        operator = ctx.config.shows_operator_details
        view = guard(self._view_fallback, operator)
        panel = guard(self._panel_fallback, operator)
        self.upload = view(self._upload)
        self.example = view(self._example)
        self.encode = view(self._encode_view)
        self.after_switch = view(self._after_switch)
        self.sync = guard(lambda *a: tuple(gr.skip() for _ in range(VIEW_SIZE - 2)),
                          operator)(self._sync)
        self.rename_object = view(self._rename_object)
        self.show_candidates = view(self._show_candidates)
        self.point = view(self._point)
        self.box = view(self._box)
        self.choose = view(self._choose)
        self.pick_object = view(self._pick_object)
        self.remove_object = view(self._remove_object)
        self.bulk_action = view(self._bulk_action)
        self.new_object = view(self._new_object)
        self.undo = view(self._undo)
        self.redo = view(self._redo)
        self.clear = view(self._clear)
        self.refresh = view(self._refresh)
        self.change_model = panel(self._change_model)
        self.download_model = panel(self._download_model)

    # --- views -------------------------------------------------------------------------------

    def session_for(self, session: Session | None, request: gr.Request | None,
                    model_id: str | None = None) -> Session:
        """The caller's session, created (and registered for release) on first use."""
        if session is None or session.released:
            session_id = getattr(request, "session_hash", None) or f"anon-{id(request)}"
            session = Session(session_id, model_id or self.ctx.default_model())
            self.ctx.sessions.track(session, client_address(request))
        else:
            self.ctx.sessions.touch(session.session_id)
        return session

    def view(self, session: Session, hint: str | None = None, busy: str | None = None) -> tuple:
        name = self.ctx.spec(session.model_id).display_name
        v = build_view(session, name, hint, self.ctx, busy)
        return (session, v.canvas) + self._panels(session, v)

    def _panels(self, session: Session, v: Any = None) -> tuple:
        """Everything but the state and the canvas (what ``synced`` refreshes)."""
        if v is None:
            v = build_view(session, self.ctx.spec(session.model_id).display_name, None)
        return (v.objects, v.candidates, v.status,
                gr.update(interactive=v.can_undo), gr.update(interactive=v.can_redo),
                gr.update(interactive=v.can_clear), downloads_value(session))

    def _sync(self, session: Session | None, request: gr.Request) -> tuple:
        """After a live click: the side panels for the session as it is now."""
        if session is None:
            return tuple(gr.skip() for _ in range(VIEW_SIZE - 2))
        return self._panels(session)

    def _refresh(self, session: Session | None, request: gr.Request) -> tuple:
        """The whole view for the session as it is now (after another panel changed it)."""
        return self.view(self.session_for(session, request))

    def _view_fallback(self, session: Session | None, *_: Any) -> tuple:
        if session is None:
            return (None,) + tuple(gr.skip() for _ in range(VIEW_SIZE - 1))
        return self.view(session)

    def _panel_fallback(self, session: Session | None, model_id: str, *_: Any) -> tuple:
        view = self._view_fallback(session)
        return view + models_panel.panel_updates(self.ctx, model_id)

    # --- image -------------------------------------------------------------------------------

    def _upload(self, session: Session | None, path: str | None, model_id: str,
                request: gr.Request, progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, model_id)
        if not path:
            return self.view(session)
        return self._open(session, Path(path), Path(path).name, progress)

    def _example(self, session: Session | None, model_id: str, evt: gr.SelectData,
                 request: gr.Request, progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, model_id)
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not 0 <= index < len(self.examples):
            raise UserError("That example does not exist any more; pick another one.")
        path = self.examples[index]
        return self._open(session, path, path.name, progress)

    def _open(self, session: Session, path: Path, name: str, progress: Any) -> tuple:
        """Show the image at once; ``encode`` (the next event) computes the embedding."""
        image = load_image(path, max_pixels=self.ctx.config.max_image_pixels)
        session.set_image(image, image_digest(image), name)
        if not self.ctx.status(session.model_id).present:
            return self.view(session, self.absent_hint(session))
        return self.view(session, busy=self.busy_text(session))

    def absent_hint(self, session: Session) -> str | None:
        """The canvas hint while the session's model is not downloaded (None: it is)."""
        if self.ctx.status(session.model_id).present:
            return None
        name = self.ctx.spec(session.model_id).display_name
        if not models_panel.needs_download(self.ctx, session.model_id):  # offline, or no URL
            return f"{name} is not on this server: pick a model that is ready on the left."
        return f"{name} is not downloaded: download it or pick another model on the left."

    def busy_text(self, session: Session) -> str | None:
        """The canvas's progress text while the image is being encoded (None: nothing to do)."""
        model_id = session.model_id
        if not encodes(model_id) or not session.has_image:
            return None
        if self.ctx.cached(model_id, session.digest):
            return None
        name = self.ctx.spec(model_id).display_name
        # this model's own time here (or a labelled guess), never another model's typical time
        estimate = self.ctx.encode_timings.estimate(model_id)
        reference = estimate.reference
        if reference in self.ctx.model_ids:
            reference = self.ctx.spec(reference).display_name
        about = (f": {estimate.text(reference)}" if estimate.seconds is not None
                 else " (the first time here: not timed yet)")
        if not self.ctx.pool.is_loaded(model_id):
            return f"Loading {name} and encoding the image{about}… clicks are kept."
        return f"Encoding the image with {name}{about}… clicks are kept."

    def _encode_view(self, session: Session | None, request: gr.Request) -> tuple:
        """The second half of an upload: the embedding, then the view without the indicator."""
        if session is None or not session.has_image:
            return self._view_fallback(session)
        if self.ctx.status(session.model_id).present:
            self._encode(session)
        return self.view(session, self.absent_hint(session))

    def _encode(self, session: Session, progress: Any = None) -> Embedding:
        """The session image's embedding for its model (cached after the first time)."""
        picture = session.picture  # one consistent (image, digest) pair
        if picture is None:
            raise UserError("Upload an image first (or pick an example).", "No image")
        name = self.ctx.spec(session.model_id).display_name
        if progress is not None and not self.ctx.cached(session.model_id, picture.digest):
            loading = not self.ctx.pool.is_loaded(session.model_id)
            progress(0.2, desc=f"Loading {name}…" if loading else f"Encoding with {name}…")
            self.ctx.backend(session.model_id)
            progress(0.5, desc=f"Computing the image embedding with {name} (once per image)…")
        encoded = self.ctx.encode(session.model_id, picture.image, picture.digest)
        if not encoded.cached or "encode_s" not in session.timings:
            session.timings.update(encode_s=encoded.seconds, cached=encoded.cached)
        return encoded.embedding

    # --- prompts -----------------------------------------------------------------------------

    def _decode_active(self, session: Session, prompts: PromptSet) -> tuple:
        """Decode new prompts for the active object and record them as one undoable step."""
        generation = session.generation
        embedding = self._encode(session)
        active = session.workspace.active
        start = time.perf_counter()
        with self.ctx.click_lane(session.model_id).admit(client=session.session_id):
            step = inference.decode(self.ctx.backend(session.model_id), embedding, prompts,
                                    previous=active.current.model_result)
        step = step.with_edits(active.current.edits)  # hand edits stay on top (segment.live)
        session.timings["decode_s"] = time.perf_counter() - start
        if generation == session.generation:  # the image did not change meanwhile
            session.workspace = session.workspace.update(active.record(step))
        return self.view(session)

    def _point(self, session: Session | None, mode: str, evt: gr.EventData,
               request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        click = point_from_event(getattr(evt, "_data", None))
        current = session.workspace.active.check_unlocked("refine").prompts
        check_point_cap(len(current.points), self.ctx.limits.max_points)
        background = click.background or mode == BACKGROUND
        prompts = current.with_point(click.x, click.y, 0 if background else 1)
        return self._decode_active(session, prompts)

    def _box(self, session: Session | None, evt: gr.EventData, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        box = box_from_event(getattr(evt, "_data", None))
        active = session.workspace.active.check_unlocked("refine")
        return self._decode_active(session, active.prompts.with_box(box))

    def _choose(self, session: Session | None, evt: gr.EventData, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        index = index_from_event(getattr(evt, "_data", None),
                                 len(session.workspace.active.current.candidates))
        session.workspace.active.check_unlocked("change")
        session.workspace = inference.pick_candidate(session.workspace, index)
        return self.view(session)

    # --- objects and history -----------------------------------------------------------------

    def _pick_object(self, session: Session | None, evt: gr.EventData,
                     request: gr.Request) -> tuple:
        """Make an object the one clicks refine; a hidden one is shown (it cannot be refined
        unseen)."""
        session = self.session_for(session, request)
        object_id = self._object_id(session, evt)
        session.workspace = session.workspace.select(object_id).flag([object_id], hidden=False)
        return self.view(session)

    def _remove_object(self, session: Session | None, evt: gr.EventData,
                       request: gr.Request) -> tuple:
        """Delete an object; the next undo brings it back (``_undo``). A locked one is refused
        with how to unlock it."""
        session = self.session_for(session, request)
        object_id = self._object_id(session, evt)
        session.workspace.get(object_id).check_unlocked("delete")
        self._delete(session, [object_id])
        return self.view(session)

    @staticmethod
    def _delete(session: Session, ids: list[int] | tuple[int, ...]) -> int:
        """Delete ``ids`` as one undo step; returns how many were locked (and kept)."""
        session.workspace, removed = session.workspace.delete_many(ids)
        if removed.entries:
            session.deleted = (session.deleted + [removed])[-20:]
            session.undo_restores_delete = True
        return removed.kept_locked

    def _bulk_action(self, session: Session | None, evt: gr.EventData,
                     request: gr.Request) -> tuple:
        """The object list's actions on its selection (``workbench.event_payloads.BulkAction``):
        delete (one undo step), hide/show, lock/unlock, "hide all but this" and set class.
        Locked objects are kept by delete and class changes, and the toast says how many."""
        session = self.session_for(session, request)
        known = [o.object_id for o in session.workspace.objects]
        bulk = bulk_from_event(getattr(evt, "_data", None), known)
        ws = session.workspace
        kept = 0
        if bulk.action == "delete":
            kept = self._delete(session, bulk.ids)
        elif bulk.action in ("hide", "show"):
            session.workspace = ws.flag(bulk.ids, hidden=bulk.action == "hide")
        elif bulk.action in ("lock", "unlock"):
            session.workspace = ws.flag(bulk.ids, locked=bulk.action == "lock")
        elif bulk.action == "solo":
            session.workspace = ws.solo(bulk.ids)
        else:
            names = class_names(session)
            if bulk.class_id not in names:
                raise UserError("Classes come from the project: open the image in a project "
                                "and pick one of its classes." if not names else
                                "That class does not exist any more; pick another.",
                                "Unknown class")
            session.workspace, kept = ws.classify(bulk.ids, bulk.class_id)
        if kept:
            gr.Info(f"{kept} locked object{'s were' if kept > 1 else ' was'} left as "
                    f"{'they were' if kept > 1 else 'it was'}: unlock to change "
                    f"{'them' if kept > 1 else 'it'}.", title="Locked objects kept")
        return self.view(session)

    def _rename_object(self, session: Session | None, evt: gr.EventData,
                       request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        object_id = self._object_id(session, evt)
        name = (getattr(evt, "_data", None) or {}).get("name", "")
        if not isinstance(name, str):
            raise UserError("An object's name is text.", "Name not understood")
        obj = session.workspace.get(object_id).check_unlocked("rename")
        session.workspace = session.workspace.update(obj.renamed(name))
        return self.view(session)

    def _show_candidates(self, session: Session | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.show_candidates = not session.show_candidates
        return self.view(session)

    @staticmethod
    def _object_id(session: Session, evt: gr.EventData) -> int:
        known = [o.object_id for o in session.workspace.objects]
        return object_id_from_event(getattr(evt, "_data", None), known)

    def _new_object(self, session: Session | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.undo_restores_delete = False
        session.workspace = session.workspace.new_object()
        return self.view(session)

    def _history(self, session: Session, change: str) -> tuple:
        session.workspace.active.check_unlocked(change)
        session.undo_restores_delete = False
        workspace = session.workspace.update_active(lambda o: getattr(o, change)())
        active = workspace.active
        if active.result is not None and active.result.model_id != session.model_id:
            embedding = self._encode(session)  # this step was computed by another model
            workspace = workspace.update(
                inference.rerun_object(self.ctx.backend(session.model_id), embedding, active))
        session.workspace = workspace
        return self.view(session)

    def _undo(self, session: Session | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if session.undo_restores_delete and session.deleted:
            removed = session.deleted.pop()
            if not isinstance(removed, Removed):  # an older (object, index) entry
                removed = Removed((removed,))
            session.workspace = session.workspace.restore_removed(removed)
            session.undo_restores_delete = bool(session.deleted)
            return self.view(session)
        return self._history(session, "undo")

    def _redo(self, session: Session | None, request: gr.Request) -> tuple:
        return self._history(self.session_for(session, request), "redo")

    def _clear(self, session: Session | None, request: gr.Request) -> tuple:
        return self._history(self.session_for(session, request), "clear")

    # --- models ------------------------------------------------------------------------------

    def _change_model(self, session: Session | None, model_id: str, request: gr.Request,
                      progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, model_id)
        self.ctx.entry(model_id)  # unknown ids fail here, before the session changes
        if model_id != session.model_id:
            session.timings = {}  # the old model's timings would be a lie now
        session.model_id = model_id
        hint = None
        if models_panel.needs_download(self.ctx, model_id):
            try:
                models_panel.download_with_progress(self.ctx, model_id, progress)
            except DownloadError as exc:  # offline is normal here: say so briefly, keep going
                log.warning("%s", exc)
                status = self.ctx.status(model_id)
                command = (f"Run `{status.download_command}` on the server, or pick"
                           if self.ctx.config.shows_operator_details else "Try again later or pick")
                if model_id not in session.warned_models:  # explain once, not a toast stack
                    session.warned_models.add(model_id)
                    gr.Warning(f"Download failed: {status.display_name} could not be "
                               f"downloaded (offline?). {command} another model.",
                               title="Download failed")
                hint = (f"{status.display_name} is not downloaded; the masks shown come from "
                        "the previous model. Download it or pick another model.")
        elif not self.ctx.status(model_id).present:  # offline, or weights not on the server
            hint = self.absent_hint(session)
        busy = None
        if hint is None and self.ctx.status(model_id).present:
            busy = self.busy_text(session) if session.has_image else None
            if busy is None:
                self._refresh_model(session)  # cached, GrabCut or no image: at once
        session.pending_refresh = busy is not None
        return self.view(session, hint, busy) + models_panel.panel_updates(self.ctx, model_id)

    def _refresh_model(self, session: Session) -> None:
        """Encode with the session's model and re-run every object's prompts on it."""
        session.pending_refresh = False
        if not session.has_image:
            self.ctx.backend(session.model_id)
            return
        generation = session.generation
        embedding = self._encode(session)
        workspace, problems = inference.refresh(
            self.ctx.backend(session.model_id), embedding, session.workspace)
        if generation == session.generation:
            session.workspace = workspace
        if problems:
            gr.Warning("Some objects need new prompts: " + " ".join(problems),
                       title="Some objects need new prompts")

    def _after_switch(self, session: Session | None, request: gr.Request) -> tuple:
        """The second half of a model switch: encode and re-run, behind the canvas indicator."""
        if session is None:
            return self._view_fallback(session)
        if session.pending_refresh and self.ctx.status(session.model_id).present:
            self._refresh_model(session)
        return self.view(session)


    def _download_model(self, session: Session | None, model_id: str, request: gr.Request,
                        progress=gr.Progress()) -> tuple:
        session = self.session_for(session, request, model_id)
        models_panel.download_with_progress(self.ctx, model_id, progress)
        return self._change_model(session, model_id, request, progress)
