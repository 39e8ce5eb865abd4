"""What the project views show, as plain values (no Gradio): the bar above the canvas, the
paged image list with thumbnails, the summary line and the class list.

Every list is paged by the store (``count`` + ``page``), so a project of 100,000 images costs
one page of rows and thumbnails per view, never the whole table.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from typing import Any

from workbench.projects.model import STATUS_LABELS, STATUSES, ImageEntry, LabelClass

PAGE_SIZE = 48  # thumbnails per page of the image list
ALL = "all"


@dataclass(frozen=True)
class ProjectBar:
    """The bar above the canvas while a project image is open."""

    visible: bool
    info: str = ""  # Markdown: "Image 3 of 30 · truck.jpg · In review · 2 objects"
    status: str | None = None
    classes: tuple[tuple[str, int], ...] = ()  # radio choices: ("1 · car", class id)
    class_id: int | None = None


@dataclass(frozen=True)
class GalleryPage:
    """One page of the image list: (thumbnail, caption) items, their image ids, the page."""

    items: tuple[tuple[Any, str], ...]
    image_ids: tuple[int, ...]
    page: int
    pages: int
    total: int

    @property
    def label(self) -> str:
        if not self.total:
            return "No images match."
        return f"Page {self.page + 1} of {self.pages} · {self.total:,} images"


def class_choices(classes: list[LabelClass]) -> tuple[tuple[str, int], ...]:
    """Radio choices: the first nine carry the number key that picks them."""
    return tuple((f"{i + 1} · {c.name}" if i < 9 else c.name, c.class_id)
                 for i, c in enumerate(classes))


def project_bar(session: Any) -> ProjectBar:
    """The bar for ``session`` (hidden when no project image is open)."""
    link, store = session.link, session.project
    if link is None or store is None:
        return ProjectBar(False)
    entry = store.entry(link.image_id)
    position = store.index_of(link.image_id) + 1
    total = store.count()
    info = (f"**{html.escape(store.name)}** · image {position:,} of {total:,} · "
            f"`{html.escape(entry.path)}`")
    if store.read_only:
        info += "  \n🔒 Read-only project: changes are not saved."
    classes = store.classes()
    return ProjectBar(True, info, entry.status, class_choices(classes),
                      session.workspace.class_id)


def status_choices() -> list[tuple[str, str]]:
    return [(STATUS_LABELS[s], s) for s in STATUSES]


def filter_status(value: str | None) -> str | None:
    return value if value in STATUSES else None


def filter_class(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "", ALL) else None
    except (TypeError, ValueError):
        return None


def summary(store: Any, prefetch: Any = None) -> str:
    """Counts by status, and what the background encoder keeps ready (``PrefetchStatus``)."""
    parts = [f"{store.count(status=s):,} {STATUS_LABELS[s].lower()}" for s in STATUSES]
    text = f"**{html.escape(store.name)}** · {store.count():,} images: " + ", ".join(parts)
    if prefetch is not None and prefetch.enabled:
        text += f"  \nNext images encoded ahead: {prefetch.done:,} ready"
        if prefetch.disk_max_bytes:
            text += (f"; kept on disk {prefetch.disk_bytes / 2**20:,.0f} of "
                     f"{prefetch.disk_max_bytes / 2**20:,.0f} MiB")
    return text


STATUS_MARKS = {"new": "○", "auto": "◐", "review": "●", "done": "✓", "skipped": "–"}


def caption(entry: ImageEntry) -> str:
    """"● 3 · dog.jpg": the status mark first (captions are cut at the tile's width), then
    the object count, then the file name; ⚠ for an image that could not be read."""
    name = entry.path.rsplit("/", 1)[-1]
    mark = "⚠" if entry.error else STATUS_MARKS.get(entry.status, "?")
    count = f"{entry.object_count} · " if entry.object_count else ""
    return f"{mark} {count}{name}"


def status_legend() -> str:
    return " ".join(f"{STATUS_MARKS[s]} {STATUS_LABELS[s].lower()}" for s in STATUSES)


def gallery_page(store: Any, page: int, status: str | None, class_id: int | None,
                 page_size: int = PAGE_SIZE) -> GalleryPage:
    """Page ``page`` (0-based, clamped) of the images matching the filters, with thumbnails
    (made lazily by the store and cached on disk; an unreadable image shows a grey tile)."""
    from PIL import Image

    total = store.count(status=status, class_id=class_id)
    pages = max(1, -(-total // page_size))
    page = max(0, min(int(page), pages - 1))
    entries = store.page(page * page_size, page_size, status=status, class_id=class_id)
    items = []
    for entry in entries:
        try:
            thumb = Image.open(io.BytesIO(store.thumbnail(entry.image_id)))
            thumb.load()
        except Exception:  # noqa: BLE001 - the store recorded why; show a placeholder tile
            thumb = Image.new("RGB", (160, 120), (200, 200, 200))
        items.append((thumb, caption(entry)))
    return GalleryPage(tuple(items), tuple(e.image_id for e in entries), page, pages, total)


def classes_html(classes: list[LabelClass], counts: dict[int, int] | None = None) -> str:
    """The class list with colour swatches and number keys."""
    rows = []
    for i, c in enumerate(classes):
        key = f"<kbd>{i + 1}</kbd> " if i < 9 else ""
        count = f" · {counts.get(c.class_id, 0):,}" if counts else ""
        rows.append(f'<div class="pj-class">{key}<span class="pj-swatch" '
                    f'style="background:{c.color}"></span>{html.escape(c.name)}{count}</div>')
    return '<div class="pj-classes">' + "".join(rows) + "</div>"
