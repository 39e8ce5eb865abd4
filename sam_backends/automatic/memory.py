"""What a "segment everything" run may hold in memory, estimated from its parameters.

A run keeps every candidate that passes the low-res filters until NMS: its logits in fp16, up
to 256 x 256 each (``generator._Candidates``), so at worst ``points_per_side ** 2`` points x 3
candidates (``multimask_output``) x 128 KiB: 1.5 GiB for a 64 x 64 grid, which is what one such
run was measured to cost (+1.6 GB RSS, issue 19). Each batch adds its fp32 decoder output and
the temporaries of filtering it. ``fit_memory`` bounds both against a byte budget: the batch is
made smaller when that suffices, and a grid whose candidates alone cannot fit is refused with an
``EverythingParamError`` that names the largest grid allowed. A run on the fast fp32 decoder
also holds ``speed.row_folding``'s per-run tables (``RUN_TABLE_BYTES``), counted in every
estimate whatever the path, since the worst case is what is bounded.

The estimate is the worst case (every candidate kept); trained models keep far fewer, so the
real peak is lower.
"""

from __future__ import annotations

import dataclasses
import math

from .decoding import LOW_RES
from .params import MAX_POINTS_PER_SIDE, EverythingParamError, EverythingParams

KEPT_BYTES = LOW_RES * LOW_RES * 2  # one kept candidate: fp16 logits, 128 KiB at most
BATCH_BYTES = LOW_RES * LOW_RES * 4 * 2  # one candidate in a batch: fp32 logits + temporaries
# The fast decoder's per-run fold tables (speed/row_folding.py), fp32 over the 64 x 64 image
# rows: three attention tables of 128 columns (the decoder's attention width, 256 / 2) and the
# first upscaling's 256 columns (64 channels x 4 kernel taps), the same for SAM 1 and SAM 2.
RUN_TABLE_BYTES = 64 * 64 * (3 * 128 + 256) * 4  # 10 MiB


def candidates_per_point(params: EverythingParams) -> int:
    return 3 if params.multimask_output else 1


def peak_bytes(params: EverythingParams) -> int:
    """The worst-case bytes a run with ``params`` holds: every candidate kept, plus a batch."""
    per_point = candidates_per_point(params)
    return RUN_TABLE_BYTES + per_point * (params.points_per_side ** 2 * KEPT_BYTES
                                          + params.points_per_batch * BATCH_BYTES)


def largest_grid(params: EverythingParams, max_bytes: int) -> int:
    """The largest points_per_side (at most ``MAX_POINTS_PER_SIDE``) whose worst case fits
    ``max_bytes`` with batches of one point (0 when not even a 1 x 1 grid fits)."""
    per_point = candidates_per_point(params)
    room = (max_bytes - RUN_TABLE_BYTES) // per_point - BATCH_BYTES
    return min(MAX_POINTS_PER_SIDE, math.isqrt(max(0, room) // KEPT_BYTES))


def fit_memory(params: EverythingParams, max_bytes: int | None) -> EverythingParams:
    """``params`` with ``points_per_batch`` lowered so that the run's worst case fits
    ``max_bytes``; unchanged when it fits already or ``max_bytes`` is None.

    Raises:
        EverythingParamError: (field ``points_per_side``) the grid's candidates alone pass the
            budget; the message names the largest grid allowed.
    """
    if max_bytes is None or peak_bytes(params) <= max_bytes:
        return params
    per_point = candidates_per_point(params)
    kept = per_point * params.points_per_side ** 2 * KEPT_BYTES
    batch = (max_bytes - RUN_TABLE_BYTES - kept) // (per_point * BATCH_BYTES)
    if batch >= 1:
        return dataclasses.replace(params, points_per_batch=int(batch))
    side = params.points_per_side
    least = peak_bytes(dataclasses.replace(params, points_per_batch=1))
    largest = largest_grid(params, max_bytes)
    other = ""
    if params.multimask_output:
        single = largest_grid(dataclasses.replace(params, multimask_output=False), max_bytes)
        other = f", or {single} x {single} with multimask_output false (one candidate a point)"
    raise EverythingParamError(
        "points_per_side",
        f"A {side} x {side} grid may hold up to {least / 2**20:,.0f} MiB of "
        f"candidate masks and decoding tables, more than this server allows for one run "
        f"({max_bytes / 2**20:,.0f} MiB). The largest grid allowed is {largest} x {largest}"
        f"{other}.")
