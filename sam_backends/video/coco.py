"""A tracked clip as a standard COCO document: one image per processed frame, one annotation per
object per frame, the object's id kept as ``track_id``.

Why COCO and not a layout of our own: COCO readers (``pycocotools.coco.COCO``, FiftyOne, CVAT's
importer) then see every mask. Earlier exports nested masks under ``frames[i]["masks"]``, which
those tools read as zero annotations.

The document:

* ``images``: ``id`` = processed frame index + 1 (COCO ids start at 1), ``file_name``
  ``frame_<source index, 6 digits>.png`` (the name the frame PNG exports use), ``width``,
  ``height``, and the frame's place in the clip: ``frame_index`` (processed), ``source_index``
  (in the file) and ``time_s``.
* ``categories``: one per distinct object name (ids from 1, in order of first appearance).
* ``annotations``: ``image_id``, ``category_id``, ``track_id`` (the object's id),
  ``segmentation`` (COCO RLE, counts as text), ``area``, ``bbox`` [x, y, w, h], ``iscrowd`` 0;
  an object with an empty mask on a frame has no annotation there.
* the clip: ``info`` (fps, size, frame indices), and, at the top level for scripts that read
  them directly, ``fps``, ``size`` [H, W], ``num_frames``, ``frame_indices`` and ``objects``
  (``id``, ``name``, ``category_id``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..masks import coco_bbox, encode_rle, mask_box
from .source import Video

FORMAT = "coco"


def frame_file_name(source_index: int) -> str:
    """The ``file_name`` of a frame's COCO image (and of its PNG in a frames export)."""
    return f"frame_{int(source_index):06d}.png"


def coco_video_document(video: Video, masks: Mapping[int, Mapping[int, np.ndarray]],
                        object_names: Mapping[int, str] | None = None) -> dict:
    """The COCO document of ``masks`` (frame index -> {object id: bool H x W}) on ``video``.

    Every processed frame is an image, with or without masks (a frame where nothing is found is
    still a frame of the clip); see the module docstring for the fields.
    """
    names = dict(object_names or {})
    object_ids = sorted({int(obj) for row in masks.values() for obj in row})
    category_of: dict[str, int] = {}
    objects = []
    for obj in object_ids:
        name = names.get(obj) or f"object {obj}"
        category_of.setdefault(name, len(category_of) + 1)
        objects.append({"id": obj, "name": name, "category_id": category_of[name]})
    category_by_object = {entry["id"]: entry["category_id"] for entry in objects}
    height, width = (int(v) for v in video.size)
    images, annotations = [], []
    for index in range(video.num_frames):
        source = int(video.frame_indices[index])
        images.append({"id": index + 1, "file_name": frame_file_name(source), "width": width,
                       "height": height, "frame_index": index, "source_index": source,
                       "time_s": float(video.timestamps_s[index])})
        for obj, mask in sorted((masks.get(index) or {}).items()):
            mask = np.asarray(mask, dtype=bool)
            box = mask_box(mask)
            if box is None:
                continue
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1,
                "category_id": category_by_object[int(obj)], "track_id": int(obj),
                "segmentation": encode_rle(mask), "area": int(mask.sum()),
                "bbox": coco_bbox(box), "iscrowd": 0,
            })
    frame_indices = [int(v) for v in video.frame_indices]
    return {
        "format": FORMAT,
        "info": {"description": "tracked video: one image per processed frame",
                 "fps": video.fps, "size": [height, width], "frame_indices": frame_indices},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name} for name, cid in category_of.items()],
        "fps": video.fps,
        "size": [height, width],
        "num_frames": video.num_frames,
        "frame_indices": frame_indices,
        "objects": objects,
    }
