"""Handlers of the Projects view (layout in ``ui.projects.view``).

The project a page works in is ``session.project``: the operator's ``--project`` for every
page, a folder opened from ``--projects-root``, or a project the page made from uploads (its
own, in a private temp folder, gone with the page's session). Nothing here takes a path from
the browser: folders are offered by name, uploads arrive through Gradio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ui.feedback import guard
from workbench.errors import UserError
from workbench.projects.model import ProjectError
from workbench.projects.transfer import export_zip, import_into
from workbench.projects.values import (
    ALL,
    classes_html,
    filter_class,
    filter_status,
    gallery_page,
    summary,
)

LISTING_SIZE = 8  # gallery, ids, page, page info, summary, classes, class filter, class pick
CLASS_FORM_SIZE = 2  # the class editor's name and colour


class ProjectsHandlers:
    """See the module docstring; ``segment`` is the Segment view's ``SegmentTab``."""

    def __init__(self, ctx: Any, segment: Any) -> None:
        self.ctx = ctx
        self.segment = segment
        self.bar = segment.project
        operator = ctx.config.shows_operator_details
        view = guard(lambda s, *a: self.bar._fallback(s), operator)
        listing = guard(lambda *a: tuple(gr.skip() for _ in range(LISTING_SIZE)), operator)
        self.open_picked = view(self._open_picked)
        self.open_unfinished = view(self._open_unfinished)
        self.open_folder = view(self._open_folder)
        self.create = guard(lambda s, *a: self.bar._fallback(s) + (gr.skip(),),
                            operator)(self._create)
        self.listing = listing(self._listing)
        class_change = guard(lambda *a: tuple(gr.skip() for _ in range(
            LISTING_SIZE + CLASS_FORM_SIZE)), operator)
        self.add_class = class_change(self._add_class)
        self.save_class = class_change(self._save_class)
        self.remove_class = class_change(self._remove_class)
        self.class_form = guard(lambda *a: (gr.skip(), gr.skip()), operator)(self._class_form)
        self.import_labels = listing(self._import_labels)
        self.download = guard(lambda *a: gr.skip(), operator)(self._download)
        self.export = guard(lambda *a: gr.skip(), operator)(self._export)

    def intro(self) -> str:
        projects = self.ctx.services.projects
        if projects.shared is not None:
            return summary(projects.shared)
        if projects.projects_root is not None:
            return "Open a project folder, or make one from images."
        return ("Make a project from images: it lives in this page's private area until the "
                "page's session ends; download it to keep it.")

    def store_of(self, session: Any, key: Any = None) -> Any:
        """The page's project: the session's, else the operator's, else the visitor project
        of the secret ``key`` this browser keeps."""
        store = session.project if session is not None else None
        if store is None:
            projects = self.ctx.services.projects
            store = projects.shared or projects.visitor_project(key)
            if store is not None and session is not None:
                session.project = store
        return store

    def _need_store(self, session: Any) -> Any:
        store = self.store_of(session)
        if store is None:
            raise UserError("Open or make a project first.", "No project")
        return store

    # --- the list --------------------------------------------------------------------------

    def _listing(self, session: Any, page: int, status: str, klass: Any, key: Any = None,
                 request: gr.Request | None = None) -> tuple:
        store = self.store_of(session, key)
        if store is None:
            return (gr.update(value=[]), (), 0, "No project open.", self.intro(), "",
                    gr.skip(), gr.skip())
        page_value = gallery_page(store, page, filter_status(status), filter_class(klass))
        classes = store.classes()
        choices = [("All", ALL)] + [(c.name, str(c.class_id)) for c in classes]
        picks = [(c.name, str(c.class_id)) for c in classes]
        current = klass if klass in {v for _, v in choices} else ALL
        return (gr.update(value=list(page_value.items), selected_index=None),
                page_value.image_ids, page_value.page, page_value.label,
                summary(store, self.ctx.services.prefetcher.status()),
                classes_html(classes), gr.update(choices=choices, value=current),
                gr.update(choices=picks))

    # --- opening images --------------------------------------------------------------------

    def _open_picked(self, session: Any, ids: tuple, evt: gr.SelectData,
                     request: gr.Request) -> tuple:
        session = self.segment.handlers.session_for(session, request)
        store = self._need_store(session)
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not 0 <= index < len(ids):
            raise UserError("That image is not on this page any more; pick it again.",
                            "Image not found")
        return self.bar.open(session, store, int(ids[index]))

    def _open_unfinished(self, session: Any, request: gr.Request) -> tuple:
        session = self.segment.handlers.session_for(session, request)
        store = self._need_store(session)
        current = session.link.image_id if session.link is not None else None
        entry = store.next_unfinished(current)
        if entry is None:
            gr.Info("Every image is done or skipped.")
            return self.bar.outputs(session, busy=False)
        return self.bar.open(session, store, entry.image_id)

    def _open_folder(self, session: Any, name: str, request: gr.Request) -> tuple:
        session = self.segment.handlers.session_for(session, request)
        store = self.ctx.services.projects.open_folder(str(name or ""))
        return self.bar.open_first(session, store)

    def _create(self, session: Any, files: list[str] | None, request: gr.Request) -> tuple:
        """A visitor project of the uploaded images; its secret key goes to this browser
        (``SegmentTab.project_key``), so a reload finds it again."""
        session = self.segment.handlers.session_for(session, request)
        paths = [Path(f) for f in (files or [])]
        total = sum(p.stat().st_size for p in paths if p.is_file())
        self.ctx.temp.reserve(total, "These images")
        key, store = self.ctx.services.projects.create_visitor_project(paths)
        return self.bar.open_first(session, store) + (key,)

    # --- classes ---------------------------------------------------------------------------

    def _add_class(self, session: Any, name: str, color: str | None, pick: Any, page: int,
                   status: str, klass: Any) -> tuple:
        """Add a class; the editor is then blank again, showing the next class's colour."""
        def add(store: Any) -> None:  # nothing stays picked
            store.add_class(name, color or None)

        return self._change_class(session, (page, status, klass), "Class not added", add)

    def _save_class(self, session: Any, name: str, color: str | None, pick: Any, page: int,
                    status: str, klass: Any) -> tuple:
        """Rename or recolour the picked class, which stays picked in the editor."""
        class_id = self._picked(pick, "change")
        return self._change_class(
            session, (page, status, klass), "Class not changed",
            lambda store: store.update_class(class_id, name=name or None, color=color or None))

    def _remove_class(self, session: Any, name: str, color: str | None, pick: Any, page: int,
                      status: str, klass: Any) -> tuple:
        class_id = self._picked(pick, "remove")
        return self._change_class(session, (page, status, klass), "Class not removed",
                                  lambda store: store.remove_class(class_id, reassign_to=None))

    def _class_form(self, session: Any, pick: Any, key: Any = None) -> tuple[Any, Any]:
        """The class editor's name and colour: the picked class's own, else blank with the
        colour a new class would get. The colour picker always shows a colour, so "Add" is
        never a guess about which one the class will have."""
        store = self.store_of(session, key)
        if store is None:
            return gr.skip(), gr.skip()
        return self._form_of(store, filter_class(pick))

    @staticmethod
    def _form_of(store: Any, class_id: int | None) -> tuple[str, str]:
        picked = next((c for c in store.classes() if c.class_id == class_id), None)
        if picked is None:
            return "", store.next_class_color()
        return picked.name, picked.color

    @staticmethod
    def _picked(pick: Any, verb: str) -> int:
        class_id = filter_class(pick)
        if class_id is None:
            raise UserError(f"Pick the class to {verb} first.", "No class picked")
        return class_id

    def _change_class(self, session: Any, listed: tuple, title: str,
                      change: Callable[[Any], Any]) -> tuple:
        """Apply ``change`` to the page's project (its refusal becomes a toast titled
        ``title``), then the list as it is now (``listed``: page, status, class filter), the
        class picked afterwards (the class ``change`` returns, or none) and the editor's name
        and colour for it."""
        store = self._need_store(session)
        try:
            kept = change(store)
        except ProjectError as exc:
            raise UserError(str(exc), title) from exc
        listing = self._listing(session, *listed)
        class_id = None if kept is None else kept.class_id
        pick = {**listing[-1], "value": None if class_id is None else str(class_id)}
        return listing[:-1] + (pick,) + self._form_of(store, class_id)

    # --- transfer --------------------------------------------------------------------------

    def _work_dir(self, session: Any) -> Path:
        return session.export_dir(self.ctx.export_parent)

    def _download(self, session: Any, request: gr.Request) -> Any:
        store = self._need_store(session)
        if self.ctx.services.projects.shared is store and not \
                self.ctx.config.shows_operator_details:
            raise UserError("This project is the operator's folder; ask them for a copy.",
                            "Not offered here")
        target = self.ctx.services.projects.zip_project(store, self._work_dir(session))
        return gr.update(value=str(target), visible=True)

    def _export(self, session: Any, fmt: str, polygons: bool, request: gr.Request) -> Any:
        store = self._need_store(session)
        try:
            target = export_zip(store, fmt, self._work_dir(session), polygons=bool(polygons))
        except ProjectError as exc:
            raise UserError(str(exc), "Export failed") from exc
        return gr.update(value=str(target), visible=True)

    def _import_labels(self, session: Any, fmt: str, path: str | None, page: int, status: str,
                       klass: Any, request: gr.Request) -> tuple:
        store = self._need_store(session)
        if not path:
            raise UserError("Pick a label file to import.", "No file")
        try:
            result, report = import_into(store, fmt, Path(path), self._work_dir(session))
        except ProjectError as exc:
            raise UserError(str(exc), "Import failed") from exc
        added = getattr(report, "objects", None) or getattr(report, "added", 0)
        problems = list(getattr(result, "problems", ())) + list(getattr(report, "problems", ()))
        gr.Info(f"Imported {added} objects to review." + (
            f" {len(problems)} problems: " + "; ".join(str(p) for p in problems[:3])
            if problems else ""))
        return self._listing(session, page, status, klass)

