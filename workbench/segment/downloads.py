"""Downloads in one step: links that the live route fills on request, from the session as it is.

No "Prepare" button: every link names the file and carries the session's revision (so the
browser never shows a cached copy of an older state), and ``/samwb/segment/file/...``
(``server.live_route``) writes it when it is pressed. ``?crop=1`` crops a cut-out to the
object's box plus a margin.

Files: ``<stem>_cutout.png`` (all objects), ``<stem>_coco.json``, and per object
``<stem>_object<N>_cutout.png`` / ``<stem>_object<N>_mask.png``, with the name a person gave
the object after the id (``object<N>-red_car_mask.png``, ``exports.object_file_part``). The
panel that shows the links is ``ui.segment.downloads_panel``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import numpy as np

from workbench.errors import UserError
from workbench.exports import (
    ExportObject,
    coco_document,
    crop_box,
    cutout_rgba,
    mask_png,
    object_file_part,
    png_bytes,
    safe_stem,
    union_mask,
)
from workbench.segment.values import LIVE_ROUTE

FILE_KEY = re.compile(r"(?:(?P<all>cutout)\.png|(?P<coco>coco)\.json"
                      r"|object(?P<id>\d{1,6})(?:-[A-Za-z0-9._-]{1,40})?"
                      r"_(?P<kind>cutout|mask)\.png)")


def export_objects(session: Any) -> list[ExportObject]:
    return [ExportObject(o.object_id, o.result.mask(), o.result.score, o.result.model_id,
                         o.prompts.to_json(), o.name)
            for o in session.workspace.with_masks()]


def downloads_value(session: Any) -> dict[str, Any]:
    """The downloads panel's value: one link per file (none before the first mask)."""
    picture = session.picture
    objects = session.workspace.with_masks() if picture is not None else []
    if not objects:
        return {"items": [], "note": "Segment an object to download it."}
    stem = safe_stem(picture.name)
    base = f"{LIVE_ROUTE}/file/{session.token}/{session.generation}"

    def link(name: str, label: str, key: str, croppable: bool = False) -> dict[str, Any]:
        return {"href": f"{base}/{name}", "name": name, "label": html.escape(label),
                "key": key, "crop": croppable}

    items = [link(f"{stem}_cutout.png", "Cut-out (all objects)", "cutout", True),
             link(f"{stem}_coco.json", "COCO JSON", "coco")]
    for o in objects:
        part = object_file_part(o.object_id, o.name)
        items.append(link(f"{stem}_{part}_cutout.png", f"{o.label} cut-out",
                          f"object{o.object_id}_cutout", True))
        items.append(link(f"{stem}_{part}_mask.png", f"{o.label} mask",
                          f"object{o.object_id}_mask"))
    return {"items": items, "rev": getattr(session, "revision", 0),
            "n": getattr(session, "render_count", 0)}


def build_file(session: Any, name: str, crop: bool = False) -> tuple[bytes, str]:
    """(bytes, media type) of download ``name`` for the session's current objects.

    Raises:
        UserError: an unknown file name, or nothing to download.
    """
    picture = session.picture
    prefix = "" if picture is None else safe_stem(picture.name) + "_"
    match = FILE_KEY.fullmatch(name[len(prefix):]) if prefix and name.startswith(prefix) else None
    if match is None:
        raise UserError("No such download; press the link again.", "No such file")
    objects = export_objects(session)
    if not objects:
        raise UserError("Segment at least one object first: click on the image.",
                        "Nothing to download yet")
    image = picture.image
    if match["coco"]:
        document = coco_document(objects, picture.name, image.shape[:2])
        return json.dumps(document, indent=1).encode("utf-8"), "application/json"
    if match["all"]:
        mask = union_mask(objects, image.shape[:2])
    else:
        chosen = [o for o in objects if o.object_id == int(match["id"])]
        if not chosen:
            raise UserError("That object has no mask any more.", "No such file")
        mask = chosen[0].mask
        if match["kind"] == "mask":
            return mask_png(mask), "image/png"
    rgba = cutout_rgba(image, mask)
    if crop:
        x0, y0, x1, y1 = crop_box(mask)
        rgba = np.ascontiguousarray(rgba[y0:y1, x0:x1])
    return png_bytes(rgba), "image/png"
