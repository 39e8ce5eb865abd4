"""The projects this app serves, and opening a project image into a session.

Two kinds, one interface (``ProjectStore``):

* the operator's project (``python app.py --project DIR``): opened at start-up, shared by every
  page of this app (it is the operator's own folder, on their machine or a private server);
* projects under ``--projects-root ROOT``: the Projects view lists ROOT's folders and opens them
  by name only (a visitor never types a path);
* visitor projects (no ``--project``): made from uploaded images inside this run's temp
  folder and found again by a random secret key that only the visitor's browser keeps
  (``gr.BrowserState``), so a reload comes back to them and no other visitor can name them;
  downloaded whole as a ZIP; removed after ``VISITOR_IDLE_S`` without use, when more than
  ``MAX_VISITOR_PROJECTS`` exist (the least recently used idle one), or when the app stops.

A project image is opened by ``open_image``: the pixels are read (within the app's pixel
limit), the stored objects become the session's workspace, and from then on every change is
saved at once (``workbench.projects.link``).
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sam_backends import ImageError
from sam_backends.images import image_digest, load_image
from workbench.errors import UserError, log
from workbench.projects.link import ImageLink
from workbench.projects.model import ProjectError
from workbench.projects.workspace_io import workspace_from_stored

MAX_OPEN_STORES = 16  # folders under --projects-root open at once (least recently used close)
MAX_SESSION_PROJECT_IMAGES = 500  # images in a project made from uploads
MAX_VISITOR_PROJECTS = 32  # visitor projects kept at once (each in the bounded temp folder)
VISITOR_IDLE_S = 6 * 3600.0  # a visitor project unused this long is removed
VISITOR_PROTECT_S = 600.0  # one used in the last 10 minutes is never removed to make room
LAST_IMAGE_KEY = "last_image_id"
CLASS_KEY = "current_class_id"  # the class the person picked last (kept over reloads)
UPLOAD_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def safe_file_name(name: str) -> str:
    """An uploaded file's name as stored in a per-session project: letters, digits, ``._- ``."""
    stem, dot, suffix = Path(name).name.rpartition(".")
    stem = re.sub(r"[^\w .-]+", "_", stem if dot else suffix).strip(" ._") or "image"
    suffix = re.sub(r"[^\w]+", "", suffix).lower() if dot else ""
    return f"{stem[:80]}.{suffix}" if suffix else stem[:80]


class ProjectsService:
    """See the module docstring. Thread-safe; one per app (``ctx.services.projects``)."""

    def __init__(self, project_dir: Path | None, projects_root: Path | None,
                 temp_parent: Path) -> None:
        self.projects_root = Path(projects_root).resolve() if projects_root else None
        self._temp_parent = Path(temp_parent)
        self._lock = threading.Lock()
        self._stores: dict[Path, Any] = {}  # folder -> open store (under projects_root)
        self._visitors: OrderedDict[str, tuple[Any, float]] = OrderedDict()  # key -> (store,
        # last use), least recently used first
        self.shared = self._open(Path(project_dir), create=True) if project_dir else None

    # --- opening ---------------------------------------------------------------------------

    @staticmethod
    def _open(folder: Path, create: bool) -> Any:
        """Open (or make) the project and pick up images added to the folder since."""
        from workbench.projects.store import ProjectStore

        store = ProjectStore.open(folder, create=create)
        if not store.read_only:
            report = store.scan()
            if report.added or report.missing or report.refused:
                log.info("project %s: %d new images, %d missing, %d refused", store.name,
                         report.added, report.missing, len(report.refused))
        return store

    def folders(self) -> list[str]:
        """Names of the folders under ``--projects-root`` a visitor may open (sorted)."""
        root = self.projects_root
        if root is None or not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def open_folder(self, name: str) -> Any:
        """The store of ``ROOT/name`` (made a project on first open); only names listed by
        ``folders`` are accepted, so no path from a visitor reaches the file system."""
        if name not in self.folders():
            raise UserError("That project folder is not offered here; pick one from the list.",
                            "Unknown project")
        folder = (self.projects_root / name).resolve()
        with self._lock:
            store = self._stores.get(folder)
            if store is None:
                try:
                    store = self._open(folder, create=True)
                except ProjectError as exc:
                    raise UserError(str(exc), "Project not opened") from exc
                if len(self._stores) >= MAX_OPEN_STORES:
                    oldest = next(iter(self._stores))
                    self._stores.pop(oldest).close()
                self._stores[folder] = store
            return store

    def visitor_project(self, key: Any) -> Any:
        """The visitor project of ``key`` (the secret the visitor's browser keeps), or None."""
        if not isinstance(key, str) or len(key) < 16:
            return None
        with self._lock:
            self._drop_idle_locked()
            found = self._visitors.get(key)
            if found is None:
                return None
            self._visitors[key] = (found[0], time.monotonic())
            self._visitors.move_to_end(key)
            return found[0]

    def _drop_idle_locked(self) -> None:
        now = time.monotonic()
        for key, (store, used) in list(self._visitors.items()):
            if now - used > VISITOR_IDLE_S:
                del self._visitors[key]
                self._remove(store)

    def _make_room_locked(self) -> None:
        if len(self._visitors) < MAX_VISITOR_PROJECTS:
            return
        now = time.monotonic()
        for key, (store, used) in self._visitors.items():  # least recently used first
            if now - used > VISITOR_PROTECT_S:
                del self._visitors[key]
                self._remove(store)
                return
        raise UserError("Too many projects are open on this server right now; try again in a "
                        "few minutes.", "Server busy")

    def create_visitor_project(self, paths: list[Path], name: str = "My project"
                               ) -> tuple[str, Any]:
        """A visitor project of uploaded images: (its secret key, its store)."""
        with self._lock:
            self._drop_idle_locked()
            self._make_room_locked()
        store = self.create_from_uploads(paths, name)
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._visitors[key] = (store, time.monotonic())
        return key, store

    def create_from_uploads(self, paths: list[Path], name: str = "My project") -> Any:
        """A project of uploaded images (copied into a private temp folder)."""
        images = [Path(p) for p in paths if Path(p).suffix.lower() in UPLOAD_SUFFIXES]
        if not images:
            raise UserError("Upload some images (JPEG, PNG, WebP, BMP or TIFF) to make a "
                            "project of them.", "No images")
        if len(images) > MAX_SESSION_PROJECT_IMAGES:
            raise UserError(f"A project made from uploads holds at most "
                            f"{MAX_SESSION_PROJECT_IMAGES} images; for more, run the app with "
                            "--project on a folder.", "Too many images")
        self._temp_parent.mkdir(parents=True, exist_ok=True)
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="project-", dir=self._temp_parent))
        used: set[str] = set()
        for path in images:
            target = safe_file_name(path.name)
            stem, suffix = Path(target).stem, Path(target).suffix
            n = 1
            while target.lower() in used:
                n += 1
                target = f"{stem}-{n}{suffix}"
            used.add(target.lower())
            shutil.copyfile(path, folder / target)
        from workbench.projects.store import ProjectStore

        try:
            return ProjectStore.open(folder, create=True, name=name)
        except ProjectError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise UserError(str(exc), "Project not made") from exc

    def _remove(self, store: Any) -> None:
        folder = store.folder
        store.close()
        if folder.is_relative_to(self._temp_parent):
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
            visitors, self._visitors = [s for s, _ in self._visitors.values()], OrderedDict()
        for store in stores:
            store.close()
        for store in visitors:
            self._remove(store)
        if self.shared is not None:
            self.shared.close()

    # --- images ----------------------------------------------------------------------------

    def open_image(self, session: Any, store: Any, image_id: int, max_pixels: int) -> None:
        """Show project image ``image_id`` in ``session`` with its stored objects."""
        entry = store.entry(image_id)
        try:
            path = store.image_path(image_id)
            image = load_image(path, max_pixels=max_pixels)
        except (ImageError, ProjectError, OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, (ImageError, ProjectError)) else (
                "the file could not be read as an image")
            try:
                store.record_image_error(image_id, reason)
            except ProjectError:
                pass
            raise UserError(f"{entry.path} could not be opened: {reason} It is marked and "
                            "skipped; go on to the next image.", "Image not opened") from exc
        height, width = image.shape[:2]
        if (entry.width, entry.height) != (width, height) and not store.read_only:
            store.set_image_size(image_id, width, height)
        rows = store.objects(image_id)
        class_id = session.workspace.class_id
        known = {c.class_id for c in store.classes()}
        if class_id not in known:
            try:
                class_id = int(store.get_state(CLASS_KEY) or -1)
            except ValueError:
                class_id = -1
        if class_id not in known:
            class_id = min(known) if known else None
        workspace = workspace_from_stored(rows, class_id, (height, width))
        session.set_image(image, image_digest(image), Path(entry.path).name)
        session.project = store
        link = ImageLink(store, image_id, workspace, entry.status,
                         class_id if class_id is not None else 0)
        session.attach(link, workspace)
        if not store.read_only:
            try:
                store.set_state(LAST_IMAGE_KEY, str(image_id))
            except ProjectError as exc:
                log.warning("could not remember the last image: %s", exc)

    @staticmethod
    def last_image(store: Any) -> int | None:
        """The image the project was last on (a reload or restart comes back to it)."""
        value = store.get_state(LAST_IMAGE_KEY)
        try:
            image_id = int(value) if value is not None else None
            return image_id if image_id is not None and store.entry(image_id) else None
        except (ValueError, ProjectError, KeyError, LookupError):
            return None

    # --- downloads -------------------------------------------------------------------------

    @staticmethod
    def zip_project(store: Any, out_dir: Path) -> Path:
        """The whole project (images, project file, database) as one ZIP in ``out_dir``.
        The database is copied through SQLite's backup API, so the ZIP is consistent even
        while pages keep saving."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", store.name).strip("._") or "project"
        target = out_dir / f"{stem}.zip"
        snapshot = out_dir / "project.sqlite"
        store.backup(snapshot)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(store.project_file, store.project_file.name)
            archive.write(snapshot, store.database_file.name)
            offset = 0
            while True:
                page = store.page(offset, 500)
                if not page:
                    break
                for entry in page:
                    path = store.image_path(entry.image_id)
                    if path.is_file():
                        archive.write(path, entry.path, compress_type=zipfile.ZIP_STORED)
                offset += len(page)
        snapshot.unlink(missing_ok=True)
        return target
