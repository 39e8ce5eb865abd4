"""The project bar above the Segment canvas: previous / next / next unfinished, the image's
status, "Done, next", and the class of new (and the selected) objects, with keys.

Keys (when no text field has the focus): ``A`` previous, ``D`` next, ``U`` next unfinished,
``Enter`` done and next, ``1``–``9`` pick a class. Moving to another image is two events like
an upload: the image and its stored objects show at once, the encode follows (usually a cache
hit: the next images are encoded in the background while the person works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.feedback import guard
from ui.segment.handlers import VIEW_SIZE
from workbench.errors import UserError
from workbench.projects.model import STATUSES, ProjectError
from workbench.projects.service import CLASS_KEY
from workbench.projects.values import project_bar, status_choices

KEYS_JS = r"""
() => {
  if (window.__samwbProjectKeys) return;
  window.__samwbProjectKeys = true;
  const press = (sel) => { const b = document.querySelector(sel);
    if (b && !b.disabled && b.offsetParent) { b.click(); return true; } return false; };
  document.addEventListener('keydown', (event) => {
    const bar = document.querySelector('#project-bar');
    if (!bar || !bar.offsetParent) return; // no project image open, or another tab
    const t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName))
        && t.type !== 'radio' && t.type !== 'checkbox') return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const k = event.key;
    let done = false;
    if (k === 'a' || k === 'A') done = press('#project-prev');
    else if (k === 'd' || k === 'D') done = press('#project-next');
    else if (k === 'u' || k === 'U') done = press('#project-unfinished');
    else if (k === 'Enter') done = press('#project-done');
    else if (/^[1-9]$/.test(k)) {
      const opts = document.querySelectorAll('#project-class input[type=radio]');
      const o = opts[Number(k) - 1];
      if (o) { o.click(); done = true; }
    }
    if (done) event.preventDefault();
  });
}
"""

CSS = """
#project-bar { padding: 4px 8px; }
#project-bar .pb-row { align-items: center; gap: 6px; }
#project-info p { margin: 0; font-size: .92em; }
#project-class .wrap { gap: 2px 10px; }
"""


@dataclass(frozen=True)
class ProjectBarParts:
    """The bar's components (outputs of every project handler, after the segment view)."""

    group: gr.Group
    info: gr.Markdown
    status: gr.Dropdown
    klass: gr.Radio
    prev: gr.Button
    next: gr.Button
    unfinished: gr.Button
    done: gr.Button

    @property
    def outputs(self) -> list:
        return [self.group, self.info, self.status, self.klass]


def build_project_bar() -> ProjectBarParts:
    """Lay the bar out (hidden until a project image is open)."""
    with gr.Group(visible=False, elem_id="project-bar") as group:
        with gr.Row(equal_height=True, elem_classes="pb-row"):
            prev = gr.Button("◀ Prev (A)", size="sm", elem_id="project-prev", scale=0,
                             min_width=96)
            nxt = gr.Button("Next (D) ▶", size="sm", elem_id="project-next", scale=0,
                            min_width=96)
            unfinished = gr.Button("Next unfinished (U)", size="sm",
                                   elem_id="project-unfinished", scale=0, min_width=150)
            info = gr.Markdown(elem_id="project-info")
            status = gr.Dropdown(status_choices(), label="Image status", scale=0,
                                 min_width=150, elem_id="project-status", container=False)
            done = gr.Button("✓ Done, next (Enter)", size="sm", variant="primary",
                             elem_id="project-done", scale=0, min_width=150)
        klass = gr.Radio([], label="Class of new objects and of the selected one (keys 1–9)",
                         elem_id="project-class")
    return ProjectBarParts(group, info, status, klass, prev, nxt, unfinished, done)


def bar_updates(session: Any) -> tuple:
    """The four outputs of the bar for ``session``."""
    if session is None:
        return gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
    bar = project_bar(session)
    if not bar.visible:
        return gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
    return (gr.update(visible=True), bar.info, gr.update(value=bar.status),
            gr.update(choices=list(bar.classes), value=bar.class_id))


class ProjectBarHandlers:
    """Handlers of the bar; ``segment`` is the view's ``SegmentHandlers`` (views, encode)."""

    def __init__(self, segment: Any) -> None:
        self.segment = segment
        self.ctx = segment.ctx
        fallback = guard(self._fallback, self.ctx.config.shows_operator_details)
        self.previous = fallback(self._previous)
        self.next = fallback(self._next)
        self.unfinished = fallback(self._unfinished)
        self.done = fallback(self._done)
        self.set_status = fallback(self._set_status)
        self.pick_class = fallback(self._pick_class)
        self.restore = fallback(self._restore)
        self.sync = guard(lambda *a: tuple(gr.skip() for _ in range(VIEW_SIZE - 1)),
                          self.ctx.config.shows_operator_details)(self._sync)
        self.refresh = fallback(self._refresh)

    # --- helpers ---------------------------------------------------------------------------

    def _fallback(self, session: Any, *_: Any) -> tuple:
        view = self.segment._view_fallback(session)
        return view + bar_updates(session)

    def outputs(self, session: Any, busy: bool = True) -> tuple:
        """The segment view (with the encode indicator when one follows) and the bar."""
        hint = self.segment.absent_hint(session) if session.has_image else None
        busy_text = self.segment.busy_text(session) if busy and hint is None else None
        return self.segment.view(session, hint, busy_text) + bar_updates(session)

    def _current(self, session: Any) -> tuple[Any, Any]:
        store = session.project if session is not None else None
        link = session.link if session is not None else None
        if store is None or link is None:
            raise UserError("Open a project image first (Projects tab).", "No project image")
        return store, link

    def open(self, session: Any, store: Any, image_id: int) -> tuple:
        """Show ``image_id`` of ``store`` in ``session`` (then ``segment.encode`` follows)."""
        self.ctx.services.projects.open_image(session, store, image_id,
                                              self.ctx.config.max_image_pixels)
        self.want_next(session, store, image_id)
        return self.outputs(session)

    def want_next(self, session: Any, store: Any, image_id: int) -> None:
        """Ask the background encoder for the images after this one (when there is one)."""
        prefetch = self.ctx.services.prefetcher
        paths = []
        current = image_id
        for _ in range(2):
            entry = store.neighbour(current, +1)
            if entry is None:
                break
            paths.append(store.image_path(entry.image_id))
            current = entry.image_id
        if paths:
            prefetch.want(session.session_id, session.model_id, paths)

    # --- handlers --------------------------------------------------------------------------

    def _step(self, session: Any, request: gr.Request, step: int) -> tuple:
        session = self.segment.session_for(session, request)
        store, link = self._current(session)
        entry = store.neighbour(link.image_id, step)
        if entry is None:
            gr.Info("This is the " + ("last" if step > 0 else "first") + " image.")
            return self.outputs(session, busy=False)
        return self.open(session, store, entry.image_id)

    def _previous(self, session: Any, request: gr.Request) -> tuple:
        return self._step(session, request, -1)

    def _next(self, session: Any, request: gr.Request) -> tuple:
        return self._step(session, request, +1)

    def _unfinished(self, session: Any, request: gr.Request) -> tuple:
        session = self.segment.session_for(session, request)
        store, link = self._current(session)
        entry = store.next_unfinished(link.image_id)
        if entry is None:
            gr.Info("Every image is done or skipped.")
            return self.outputs(session, busy=False)
        return self.open(session, store, entry.image_id)

    def _done(self, session: Any, request: gr.Request) -> tuple:
        session = self.segment.session_for(session, request)
        store, link = self._current(session)
        self._write_status(store, link, "done")
        return self._unfinished(session, request)

    def _set_status(self, session: Any, status: str, request: gr.Request) -> tuple:
        session = self.segment.session_for(session, request)
        store, link = self._current(session)
        if status not in STATUSES:
            raise UserError("Pick a status from the list.", "Unknown status")
        self._write_status(store, link, status)
        return self.outputs(session, busy=False)

    @staticmethod
    def _write_status(store: Any, link: Any, status: str) -> None:
        try:
            store.set_status(link.image_id, status)
        except ProjectError as exc:
            raise UserError(str(exc), "Status not saved") from exc
        link.status = status

    def _pick_class(self, session: Any, class_id: Any, request: gr.Request) -> tuple:
        session = self.segment.session_for(session, request)
        store, _ = self._current(session)
        known = {c.class_id for c in store.classes()}
        try:
            class_id = int(class_id)
        except (TypeError, ValueError):
            return self.outputs(session, busy=False)
        if class_id not in known:
            raise UserError("That class does not exist any more; pick another.",
                            "Unknown class")
        workspace = session.workspace.with_class(class_id)
        active = workspace.active
        if not active.is_empty and not active.locked and active.class_id != class_id:
            workspace = workspace.update(active.classed(class_id))
        session.workspace = workspace
        if not store.read_only:  # a reload or the next image keeps the class
            store.set_state(CLASS_KEY, str(class_id))
        return self.outputs(session, busy=False)

    def _restore(self, session: Any, key: Any, request: gr.Request) -> tuple:
        """On page load: come back to the image the project was on (the operator's project,
        or the visitor project whose secret ``key`` this browser keeps)."""
        projects = self.ctx.services.projects
        store = projects.shared or projects.visitor_project(key)
        if store is None:
            return (gr.skip(),) * (VIEW_SIZE + 4)
        session = self.segment.session_for(session, request)
        if session.link is not None:
            return self.outputs(session)
        image_id = projects.last_image(store)
        if image_id is None:
            return self.open_first(session, store)
        return self.open(session, store, image_id)

    def open_first(self, session: Any, store: Any) -> tuple:
        """Work in ``store`` from its first unfinished image (else its first; none: the bar)."""
        session.project = store
        entry = store.next_unfinished(None) or next(iter(store.page(0, 1)), None)
        if entry is None:
            return self.outputs(session, busy=False)
        return self.open(session, store, entry.image_id)

    def _sync(self, session: Any, request: gr.Request) -> tuple:
        """``SegmentHandlers.sync`` (the side panels after a live click) plus the status."""
        panels = self.segment.sync(session, request)
        link = session.link if session is not None else None
        status = gr.update(value=link.status) if link is not None else gr.skip()
        return tuple(panels) + (status,)

    def _refresh(self, session: Any, request: gr.Request) -> tuple:
        if session is None:
            return self._fallback(session)
        return self.outputs(session, busy=False)
