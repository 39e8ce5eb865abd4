"""Attention as two bf16 matrix products, for the fast paths on CPUs with native bf16.

PyTorch's fused CPU attention (``scaled_dot_product_attention``) gains nothing from bf16
inputs on a CPU without AMX: its blocks are computed in fp32 either way. Measured on a 2-core
AMD EPYC with AVX512-BF16 and no AMX (median of 5, 2 threads):

=====================================  =============  =============  =========================
queries x keys x channels              fused fp32     fused bf16     ``bf16_attention``
=====================================  =============  =============  =========================
4,096 x 16,400 x 256 (values: 64 ch)   411 ms         424 ms         244 ms
4,096 x 4,096 x 256                    112 ms         110 ms         56 ms
=====================================  =============  =============  =========================

Here the scores of a block of query rows come from one bf16 product, the softmax runs on them
in bf16 (PyTorch computes it in fp32 and rounds the result), and a second bf16 product
weights the values. Query rows go in blocks so that the score matrix of a block stays small
(about 2 M scores, 4 MiB, whatever the number of keys): the softmax then passes over it in
cache, which made the first row below 157 ms instead of 220 ms with blocks of 512 rows.

It rounds the scores and the weights to bf16, so it is for the fast paths only (relative
error of the output about 5e-3 on random inputs, ``tests/engine/test_bf16_attention.py``),
never for the exact ``fp32`` precision.

``attention_bf16`` is what the fast modules call: these products on a CPU without AMX, where
they were measured to win, and PyTorch's fused kernel on bf16 inputs elsewhere (a GPU's flash
attention; a CPU with AMX, whose fused kernel uses the AMX tiles and was not measured here).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .accel import cpu_flags

BLOCK_SCORES = 1 << 21  # scores per block of query rows (all heads): 4 MiB of bf16


def block_rows(heads: int, keys: int, block_scores: int = BLOCK_SCORES) -> int:
    """Query rows per block: ``block_scores`` scores at most, in multiples of 32 rows."""
    return max(32, block_scores // max(1, heads * keys) // 32 * 32)


def prefers_bf16_products(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """True where ``bf16_attention`` beats the fused kernel: a CPU without AMX."""
    flags = cpu_flags() if flags is None else flags
    return device.type == "cpu" and "amx_bf16" not in flags


def attention_bf16(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention in bf16 (scale ``1/sqrt(d)``) by the faster way for ``q``'s device (module
    docstring); ``... x Nq x dv`` in bf16."""
    if prefers_bf16_products(q.device):
        return bf16_attention(q, k, v)
    dtype = torch.bfloat16
    return F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype))


def bf16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   scale: float | None = None, rows: int | None = None) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` with bf16 products (module docstring).

    Args:
        q: ``... x Nq x d`` (any float dtype; batch dims shared with ``k`` and ``v``).
        k: ``... x Nk x d``.
        v: ``... x Nk x dv`` (``dv`` may differ from ``d``).
        scale: ``1/sqrt(d)`` when None, as ``scaled_dot_product_attention``.
        rows: query rows per block; by default ``block_rows`` (a score block small enough to
            stay in cache while the softmax passes over it).

    Returns:
        ``... x Nq x dv`` in bf16 (the caller widens it where it needs to).
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    dtype = torch.bfloat16
    # Scaled before rounding, as the fused kernel scales q. Keys and values are made contiguous
    # once: a strided view (a slice of a fused qkv product) would be copied for every block.
    queries = (q * scale).to(dtype)
    keys_t = k.to(dtype).transpose(-1, -2).contiguous()
    values = v.to(dtype).contiguous()
    count = queries.shape[-2]
    if rows is None:
        rows = block_rows(queries[..., :1, :1].numel(), keys_t.shape[-1])
    if count <= rows:
        return torch.matmul(torch.softmax(torch.matmul(queries, keys_t), dim=-1), values)
    blocks = [
        torch.matmul(torch.softmax(torch.matmul(queries[..., start:start + rows, :], keys_t),
                                   dim=-1), values)
        for start in range(0, count, rows)
    ]
    return torch.cat(blocks, dim=-2)
