"""What the compare view shows: per-model cards, the agreement matrix, the disagreement image and
the comparison table. Pure functions of a ``CompareSession`` (no Gradio), unit-tested.

Every model's masks are compared as one mask per model: the union of its objects (with a
single object, that object's mask). Text built from user data is HTML-escaped here.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from sam_backends.evaluation.metrics import (
    boundary_fscore,
    disagreement_mask,
    mask_iou,
    pairwise_iou,
    vote_count,
)
from workbench.compare.state import CompareSession, ModelOutcome
from workbench.compare.timings import Estimate
from workbench.drawing import SPEC
from workbench.exports import cutout_rgba
from workbench.render import (
    boundary,
    data_url,
    fit_size,
    resize_image,
    resize_nearest,
)

CARD_SIDE = 560  # longer side of the per-model previews (the page shows them ~300 px wide)
AGREEMENT_SIDE = 960
DISAGREE_COLOR = (255, 120, 0)  # orange: some models say object, others do not
AGREE_COLOR = (0, 190, 170)  # teal: every model says object


@dataclass(frozen=True)
class ModelRow:
    """One model's figures (a row of the comparison table and of its CSV)."""

    model_id: str
    name: str
    objects: int
    scores: tuple[float, ...]
    area_px: int | None
    area_share: float | None
    encode_seconds: float | None
    encode_wait_seconds: float | None
    cached: bool
    decode_seconds: float | None
    iou_gt: float | None
    boundary_f_gt: float | None
    error: str | None

    @property
    def mean_score(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None


def model_rows(session: CompareSession, names: Mapping[str, str]) -> list[ModelRow]:
    """One ``ModelRow`` per selected model, in selection order."""
    rows = []
    pixels = session.image.shape[0] * session.image.shape[1] if session.has_image else 1
    for model_id in session.models:
        outcome: ModelOutcome = session.outcomes[model_id]
        union = session.union_mask(model_id)
        scores = tuple(score for _, _, score in session.masks_of(model_id))
        iou_gt = boundary = None
        if union is not None and session.ground_truth is not None:
            iou_gt = mask_iou(union, session.ground_truth)
            boundary = boundary_fscore(union, session.ground_truth).fscore
        area = int(union.sum()) if union is not None else None
        rows.append(ModelRow(
            model_id=model_id, name=names.get(model_id, model_id), objects=len(scores),
            scores=scores, area_px=area, area_share=None if area is None else area / pixels,
            encode_seconds=outcome.encode_seconds, cached=outcome.cached,
            encode_wait_seconds=outcome.encode_wait_seconds,
            decode_seconds=outcome.decode_seconds, iou_gt=iou_gt, boundary_f_gt=boundary,
            error=outcome.error,
        ))  # fmt: skip
    return rows


def agreement_matrix(session: CompareSession) -> tuple[list[str], np.ndarray] | None:
    """(model ids, N x N pairwise IoU) over the models that have masks; None if fewer than 2."""
    pairs = [(m, session.union_mask(m)) for m in session.models]
    pairs = [(m, mask) for m, mask in pairs if mask is not None]
    if len(pairs) < 2:
        return None
    return [m for m, _ in pairs], pairwise_iou([mask for _, mask in pairs])


# --- text -----------------------------------------------------------------------------------


def encode_text(row: ModelRow) -> str:
    """The model's own encode time (waiting for other models is ``wait_text``)."""
    if row.encode_seconds is None:
        return "—"
    if row.cached:
        return "cached"
    return _seconds(row.encode_seconds)


def wait_text(row: ModelRow) -> str:
    """How long its encode waited for other models' encodes ("—": it did not encode)."""
    if row.encode_seconds is None or row.cached or row.encode_wait_seconds is None:
        return "—"
    return _seconds(row.encode_wait_seconds)


def _seconds(value: float) -> str:
    return f"{1000 * value:.0f} ms" if value < 1.0 else f"{value:.2f} s"


def decode_text(row: ModelRow) -> str:
    return "—" if row.decode_seconds is None else f"{1000 * row.decode_seconds:.0f} ms"


def score_text(row: ModelRow) -> str:
    if not row.scores:
        return "—"
    return " · ".join(f"{s:.2f}" for s in row.scores)


def area_text(row: ModelRow) -> str:
    if row.area_px is None:
        return "—"
    return f"{row.area_px:,} px ({100 * row.area_share:.1f}%)"


def _fraction(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# --- images ---------------------------------------------------------------------------------


def _data_url_rgba(rgba: np.ndarray) -> str:
    """WebP with alpha (a fraction of a PNG's size for photos) as a data URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="WEBP", quality=85, method=3)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class CardImages:
    """Downscaled copies of the session image for the cards, built once per image.

    The "mask overlay" thumbnail is composited by the browser, as the canvas is: the card
    gets the plain image once (``base_url``) and one transparent layer per object (the
    drawing spec's colour, fill opacity and outline, ``layer_url``), stacked with CSS, so a
    click re-encodes only small mask layers, never the photo with masks burnt in.
    """

    def __init__(self, image: np.ndarray, side: int = CARD_SIDE) -> None:
        self.size = fit_size(*image.shape[:2], side)
        self.base = resize_image(image, self.size)
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            self._base_url = data_url(self.base, quality=82)
        return self._base_url

    def cutout(self, mask: np.ndarray) -> str:
        return _data_url_rgba(cutout_rgba(self.base, resize_nearest(mask, self.size)))

    def layer_url(self, number: int, mask: np.ndarray) -> str:
        """Object ``number``'s mask at card size as an RGBA PNG: its colour at the spec's fill
        opacity, its outline opaque, transparent elsewhere."""
        from PIL import Image

        small = resize_nearest(mask, self.size)
        rgba = np.zeros((*self.size, 4), np.uint8)
        rgba[small, :3] = SPEC.colour_for(number)
        rgba[small, 3] = round(255 * SPEC.fill_opacity)
        rgba[boundary(small, SPEC.outline_width(*self.size)), 3] = 255
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def overlay(self, masks: list[tuple[int, np.ndarray, float]]) -> dict[str, Any]:
        """The overlay thumbnail as the browser stacks it: the plain image and the layers."""
        return {"base": self.base_url,
                "layers": [self.layer_url(number, mask) for number, mask, _ in masks]}


def card_images(session: CompareSession) -> CardImages:
    if session.card_images is None:
        session.card_images = CardImages(session.image)
    return session.card_images


def disagreement_image(image: np.ndarray, masks: list[np.ndarray],
                       side: int = AGREEMENT_SIDE) -> np.ndarray:
    """RGB uint8: the image dimmed to grey, teal where every mask covers the pixel, orange where
    the masks disagree. At most ``side`` px on the longer side."""
    size = fit_size(*image.shape[:2], side)
    base = resize_image(image, size).astype(np.float32)
    grey = base.mean(axis=2, keepdims=True) * 0.55 + 40
    out = np.repeat(grey, 3, axis=2)
    small = [resize_nearest(m, size) for m in masks]
    votes = vote_count(small)
    agree = votes == len(small)
    differ = (votes > 0) & ~agree
    out[agree] = base[agree] * 0.55 + np.asarray(AGREE_COLOR, np.float32) * 0.45
    out[differ] = base[differ] * 0.2 + np.asarray(DISAGREE_COLOR, np.float32) * 0.8
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --- component values -----------------------------------------------------------------------


def cards_value(session: CompareSession, names: Mapping[str, str],
                estimates: Mapping[str, Estimate]) -> dict[str, Any]:
    """Value of the ``CompareCards`` component: one card per model."""
    if not session.has_image:
        return {"items": [], "hint": "Upload an image, then click or drag a box on it."}
    images = card_images(session)
    items = []
    for row in model_rows(session, names):
        masks = session.masks_of(row.model_id)
        union = session.union_mask(row.model_id)
        estimate = estimates.get(row.model_id)
        waiting = None
        if row.model_id in session.pending:
            waiting = "⏳ Answering…"
        elif row.encode_seconds is None and row.error is None and estimate is not None:
            waiting = ("⏳ " if estimate.slow else "") + f"Encoding: {estimate.text()}"
        items.append({
            "id": html.escape(row.model_id, quote=True),
            "name": html.escape(row.name),
            "cutout": images.cutout(union) if union is not None else None,
            "overlay": images.overlay(masks) if masks else None,
            "score": score_text(row),
            "area": area_text(row),
            "encode": encode_text(row),
            "wait": wait_text(row),
            "decode": decode_text(row),
            "gt": (f"IoU {row.iou_gt:.3f} · boundary F {row.boundary_f_gt:.3f}"
                   if row.iou_gt is not None else None),
            "error": _with_code(row.error) if row.error else None,
            "waiting": html.escape(waiting) if waiting else None,
            "pending": row.model_id in session.pending,
            "on_canvas": row.model_id == session.canvas_model,
        })  # fmt: skip
    return {"items": items, "hint": ""}


def _with_code(text: str) -> str:
    """Escape ``text`` for HTML and show its `backquoted` commands as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _cell_color(iou: float) -> str:
    """Red (0) through amber to green (1), light enough for dark text."""
    return f"hsl({round(120 * max(0.0, min(1.0, iou)))}, 70%, 78%)"


def agreement_value(session: CompareSession, names: Mapping[str, str]) -> dict[str, Any]:
    """Value of the ``AgreementView`` component: pairwise IoU matrix and disagreement image."""
    result = agreement_matrix(session)
    if result is None:
        return {"ready": False,
                "hint": "The agreement matrix appears when at least two models have a mask."}
    ids, matrix = result
    masks = [session.union_mask(m) for m in ids]
    picture = disagreement_image(session.image, masks)
    differ = int(np.count_nonzero(disagreement_mask(masks)))
    share = 100.0 * differ / masks[0].size
    labels = [html.escape(names.get(m, m)) for m in ids]  # the cards' names
    titles = [html.escape(f"{names.get(m, m)} ({m})", quote=True) for m in ids]
    rows = [
        {"name": labels[i], "title": titles[i],
         "cells": [{"text": f"{matrix[i, j]:.3f}", "color": _cell_color(matrix[i, j]),
                    "diag": i == j} for j in range(len(ids))]}
        for i in range(len(ids))
    ]
    return {
        "ready": True,
        "labels": labels,
        "titles": titles,
        "rows": rows,
        "image": data_url(picture, quality=85),
        "legend": (f"Orange: the models disagree ({differ:,} px, {share:.1f}% of the image). "
                   "Teal: every model says object."),
    }


TABLE_HEADERS = ("Model", "Score", "Area", "Encode", "Waited", "Decode", "IoU vs truth",
                 "Boundary F", "Mean IoU vs others")


def table_rows(session: CompareSession, names: Mapping[str, str]) -> list[list[str]]:
    """The comparison table as display strings (``TABLE_HEADERS`` order)."""
    rows = model_rows(session, names)
    means = _mean_iou_vs_others(session)
    return [
        [r.name, score_text(r), area_text(r), encode_text(r), wait_text(r), decode_text(r),
         _fraction(r.iou_gt), _fraction(r.boundary_f_gt), _fraction(means.get(r.model_id))]
        for r in rows
    ]


def _mean_iou_vs_others(session: CompareSession) -> dict[str, float]:
    result = agreement_matrix(session)
    if result is None:
        return {}
    ids, matrix = result
    count = len(ids)
    return {m: float((matrix[i].sum() - 1.0) / (count - 1)) for i, m in enumerate(ids)}
