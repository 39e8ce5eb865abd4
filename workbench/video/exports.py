"""The video overlay export, drawn with the one drawing spec (``workbench.drawing.SPEC``).

The engine (``sam_backends.video.exports``) encodes frames and writes masks, cut-outs and RLE;
how a mask looks over a frame is the application's, so it is composed here with
``workbench.render.compose``, exactly as the page previews and the REST overlay draw it: object
``n`` (ids count from 1) in ``SPEC.colour_for(n)`` at ``SPEC.fill_opacity``, outlined.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sam_backends.video import Video
from workbench.drawing import RGB, SPEC
from workbench.render import Layer, compose


def overlay_frame(frame: np.ndarray, masks: Mapping[int, np.ndarray], *,
                  colour: RGB | None = None, opacity: float = SPEC.fill_opacity) -> np.ndarray:
    """``frame`` (RGB uint8 H x W x 3) with each object's bool H x W mask drawn over it, in
    its own colour (or ``colour`` for all, as the REST API's ``mask_color`` asks)."""
    layers = [Layer(np.asarray(mask, dtype=bool),
                    colour if colour is not None else SPEC.colour_for(object_id))
              for object_id, mask in sorted(masks.items())]
    return compose(np.asarray(frame, dtype=np.uint8), layers, alpha=opacity)


def write_overlay_mp4(video: Video, masks: Mapping[int, Mapping[int, np.ndarray]],
                      path: str | Path, *, copy_audio: bool = True, crf: int = 20,
                      colour: RGB | None = None, opacity: float = SPEC.fill_opacity) -> Path:
    """The clip with every tracked object drawn over it (H.264, see the engine's exports).

    Args:
        masks: frame index -> {object id: bool H x W} (a ``MaskTrack``); frames missing from it
            are written as they are.
        colour, opacity: as ``overlay_frame``.
    """
    from sam_backends.video.exports import write_rendered_mp4

    def render(index: int, frame: np.ndarray) -> np.ndarray:
        if index not in masks:
            return frame
        return overlay_frame(frame, masks[index], colour=colour, opacity=opacity)

    return write_rendered_mp4(video, path, render, copy_audio=copy_audio, crf=crf)
