"""Pictures of proposals: what the Segment canvas draws while they are reviewed, the review
image (outlines with scores, for pictures outside the canvas) and the API's overlay.

NumPy and Pillow only, pure functions of their inputs. Colours come from
``workbench.drawing.SPEC`` by proposal index (from 0, so ``colour_for(index + 1)``), so a
proposal keeps its colour while the person toggles others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam_backends import Instances
from workbench.canvas import CanvasProposal
from workbench.drawing import SPEC, colour_hex
from workbench.proposals.logic import ProposalSet
from workbench.render import Layer, boundary, compose, fit_size, resize_image
from workbench.segment.masks import encode_mask

LABEL_TEXT_MAX = 24  # characters of a phrase drawn next to a score


def proposal_color(index: int) -> tuple[int, int, int]:
    return SPEC.colour_for(index + 1)


def proposal_label(proposal) -> str:
    """The score (and phrase) shown next to a proposal, as plain text."""
    text = f"{proposal.score:.2f}"
    return text + (f" {proposal.label[:LABEL_TEXT_MAX]}" if proposal.label else "")


def canvas_proposals(proposals: ProposalSet, payloads: dict[int, Any]
                     ) -> tuple[CanvasProposal, ...]:
    """The visible proposals as the Segment canvas draws them, best score first.

    ``payloads`` caches each proposal's display mask (``encode_mask``) by index; the caller
    keeps it for as long as ``proposals.proposals`` is the same tuple (a toggle or a new
    threshold keeps it), so only the first view of a run encodes the masks (~1 ms each).
    """
    out = []
    for p in proposals.visible:
        if p.index not in payloads:
            payloads[p.index] = encode_mask(p.result.mask(), p.result.bbox)
        out.append(CanvasProposal(p.index, payloads[p.index],
                                  colour_hex(proposal_color(p.index)),
                                  p.index in proposals.selected, proposal_label(p)))
    return tuple(out)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def review_image(image: np.ndarray, proposals: ProposalSet) -> np.ndarray:
    """RGB uint8 at the proposals' preview size: every visible proposal outlined in its colour,
    selected ones also filled, each labelled with its score (and phrase) at its top-left.

    Args:
        image: the session's image (full resolution, H x W x 3) or its preview of that size.
    """
    visible = proposals.visible
    height, width = proposals.image_size
    size = visible[0].small_shape if visible else fit_size(height, width, 1280)
    base = resize_image(image, size)
    selected = [Layer(p.small_mask(), proposal_color(p.index), True)
                for p in visible if p.index in proposals.selected]
    out = compose(base, selected)
    thickness = max(1, round(max(size) / 400))
    for p in visible:  # every outline, selected or not, so unselected ones are visible too
        out[boundary(p.small_mask(), thickness)] = proposal_color(p.index)
    return _label(out, proposals, size)


def _label(out: np.ndarray, proposals: ProposalSet, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw

    visible = proposals.visible
    if not visible:
        return out
    scale_y = size[0] / proposals.image_size[0]
    scale_x = size[1] / proposals.image_size[1]
    picture = Image.fromarray(out)
    draw = ImageDraw.Draw(picture)
    font = _font(max(14, round(max(size) / 60)))  # legible when the image is shown smaller
    for p in visible:
        x, y, _, _ = p.result.bbox
        text = proposal_label(p)
        if p.index in proposals.selected:
            text = "✓ " + text if _has_glyph(font, "✓") else "* " + text
        left, top = x * scale_x, y * scale_y
        box = draw.textbbox((left, top), text, font=font)
        pad = 2
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
                       fill=proposal_color(p.index))
        draw.text((left, top), text, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def _has_glyph(font, char: str) -> bool:
    """True when ``font`` draws ``char`` itself, not its "missing glyph" box (which is what
    Pillow's default font draws for "✓"): compared with a private-use character's drawing."""
    try:
        drawn = font.getmask(char)
        missing = font.getmask("\ue000")
        if drawn.getbbox() is None:
            return False
        return (drawn.size != missing.size) or bytes(drawn) != bytes(missing)
    except Exception:  # noqa: BLE001 - a font without the glyph: use the ASCII mark
        return False


def overlay(image: np.ndarray, instances: Instances) -> np.ndarray:
    """RGB uint8 H x W x 3 at full resolution: every instance filled and outlined in its
    colour (the API's overlay PNG)."""
    layers = [Layer(instances.masks[i], proposal_color(i), False) for i in range(len(instances))]
    return compose(np.asarray(image, np.uint8), layers)
