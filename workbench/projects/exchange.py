"""Between the store and the dataset formats: streaming images out, adding objects in.

``iter_labelled`` walks the images in list order, ``EXPORT_PAGE`` at a time (a keyset query
per page, the store's lock held only while a page is read), so an export of 100,000 images
holds one page in memory and never blocks the app for long.

``import_objects`` takes what a format's reader produced (``LabelledImage`` with relative
paths) and adds the objects:

* ``class_names`` maps each object's ``class_id`` to a name: a sequence is indexed by it, a
  mapping looked up. A name that is not a class yet becomes one (case-insensitive match).
* images are matched by relative path (``\\`` read as ``/``, a leading ``./`` dropped); an
  unknown path, a size that differs from the image's (read from its header when not known
  yet), or a mask whose size is not the image's is a problem listed in the report, and that
  image (or object) is skipped.
* objects get new local ids after the image's highest, ``source`` as given (model-made ones
  get the run key ``"import"``), ``edited`` as the file says (COCO's attributes), and the image
  the status "review". Importing the same file twice adds the objects twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from . import records
from .model import SOURCES, LabelledImage, LabelledObject, ProjectError, StoredObject
from .thumbnails import UnreadableImage, probe_size

if TYPE_CHECKING:
    from .store import ImportReport, ProjectStore

EXPORT_PAGE = 256
IMPORT_CHUNK = 200
MAX_PROBLEMS = 1000


def iter_labelled(store: ProjectStore, status: str | None) -> Iterator[LabelledImage]:
    from .navigation import check_status

    check_status(status)
    last = ""
    while True:
        with store._read() as conn:
            where = "error = '' AND sort_key > ?" + (" AND status = ?" if status else "")
            params = [last] + ([status] if status else [])
            images = conn.execute(
                f"SELECT id, path, sort_key, width, height FROM images WHERE {where} "
                "ORDER BY sort_key LIMIT ?", [*params, EXPORT_PAGE]).fetchall()
            if not images:
                return
            ids = [row[0] for row in images]
            by_image: dict[int, list[LabelledObject]] = {i: [] for i in ids}
            for row in conn.execute(
                    "SELECT image_id, class_id, rle_h, rle_w, rle_counts, instance_name, score, "
                    f"source, edited FROM objects WHERE image_id IN ({', '.join('?' * len(ids))}) "
                    "ORDER BY image_id, local_id", ids):
                by_image[row[0]].append(records.labelled_from_row(row[1:]))
        last = images[-1][2]
        for image_id, path, _key, width, height in images:
            try:
                source = store.image_path(image_id)
            except ProjectError as exc:
                store.record_image_error(image_id, str(exc))
                continue
            if width is None or height is None:
                try:
                    width, height = probe_size(source)
                except UnreadableImage as exc:
                    store.record_image_error(image_id, str(exc))
                    continue
                store.set_image_size(image_id, width, height)
            yield LabelledImage(path=path, width=width, height=height,
                                objects=tuple(by_image[image_id]), source=source)


def _normal_path(path: str) -> str:
    path = str(path).replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def import_objects(store: ProjectStore, images: Iterable[LabelledImage],
                   class_names: Sequence[str] | Mapping[int, str], source: str) -> ImportReport:
    from .store import ImportReport

    if source not in SOURCES:
        raise ProjectError(f"An import's source is one of {SOURCES}, got {source!r}.")
    store._require_writable()
    problems: list[str] = []
    extra_problems = 0
    classes_added: list[str] = []
    class_ids: dict[int, int] = {}

    def problem(text: str) -> None:
        nonlocal extra_problems
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)
        else:
            extra_problems += 1

    def class_for(key: int) -> int | None:
        if key in class_ids:
            return class_ids[key]
        try:
            name = class_names[key]
            if isinstance(class_names, Sequence) and not 0 <= key < len(class_names):
                raise IndexError(key)
        except (KeyError, IndexError, TypeError):
            return None
        label = store.class_by_name(name)
        if label is None:
            label = store.add_class(name)
            classes_added.append(label.name)
        class_ids[key] = label.class_id
        return label.class_id

    n_images = n_objects = 0
    chunk: list[LabelledImage] = []

    def flush() -> None:
        nonlocal n_images, n_objects
        now = time.time()
        with store._write() as conn:
            for image in chunk:
                path = _normal_path(image.path)
                row = conn.execute("SELECT id, width, height FROM images WHERE path = ?",
                                   (path,)).fetchone()
                if row is None:
                    problem(f"{path}: no such image in the project (paths are relative to "
                            "the project folder)")
                    continue
                image_id, width, height = row
                known = width is not None
                if not known:  # read the header: masks of the wrong size must not get in
                    try:
                        width, height = probe_size(store.image_path(image_id))
                    except (UnreadableImage, ProjectError) as exc:
                        problem(f"{path}: {exc}")
                        continue
                if (width, height) != (image.width, image.height):
                    problem(f"{path}: the file says {image.width} x {image.height}, the image "
                            f"is {width} x {height}")
                    continue
                next_id = records.next_local_id(conn, image_id)
                rows = []
                for obj in image.objects:
                    class_id = class_for(obj.class_id)
                    if class_id is None:
                        problem(f"{path}: class {obj.class_id} is not in the class list")
                        continue
                    try:
                        h, w, _counts = records.check_rle(obj.rle)
                    except ProjectError as exc:
                        problem(f"{path}: {exc}")
                        continue
                    if (w, h) != (image.width, image.height):
                        problem(f"{path}: a mask of {w} x {h} on an image of "
                                f"{image.width} x {image.height}")
                        continue
                    stored = StoredObject(
                        image_id=image_id, local_id=next_id + len(rows), class_id=class_id,
                        rle=obj.rle, instance_name=obj.instance_name, source=source,
                        score=obj.score, run_key="import" if source == "model" else "",
                        edited=obj.edited)
                    rows.append(records.object_params(stored, image_id, stored.local_id, now))
                records.upsert(conn, rows)
                size_sql = "" if known else ", width = ?, height = ?"
                size = [] if known else [width, height]
                conn.execute(f"UPDATE images SET status = 'review', updated_at = ?{size_sql} "
                             "WHERE id = ?", [now, *size, image_id])
                n_images += 1
                n_objects += len(rows)
        chunk.clear()

    for image in images:
        chunk.append(image)
        if len(chunk) >= IMPORT_CHUNK:
            flush()
    if chunk:
        flush()
    if extra_problems:
        problems.append(f"... and {extra_problems} more problems")
    return ImportReport(images=n_images, objects=n_objects, classes_added=classes_added,
                        problems=problems)
