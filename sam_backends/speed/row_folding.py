"""The second layer and the first upscaling of ``FastMaskDecoder`` from per-image tables, for
runs of many prompts without a mask input (segment everything).

Why it can be done: without a mask input every prompt starts from the same image rows ``X``
(N x C), and each of the decoder's two layers changes them only by a low-rank term and a
LayerNorm. After the first layer the rows are::

    keys1 = r1 * (Xc + P0^T @ F0c) * g1 + b1

where ``Xc`` is ``X`` with each row's mean taken out, ``P0`` (heads*T x N) and ``F0``
(heads*T x C; ``F0c`` centred the same way) are what the first image-to-token attention mixed in
(``Mixing``), ``r1`` is its norm's per-row reciprocal deviation and ``g1``, ``b1`` the norm's
weights. Every product of the second layer that reads ``keys1`` is then a product with ``Xc``
(the same for every prompt, so projected once into a table) plus one with ``P0`` (heads*T = 56-64
columns instead of C = 256), and the first transposed convolution after the second layer, whose
rows are ``keys1 + P1^T @ F1`` normed again, likewise (``ConvFold``).

Multiply-adds per prompt, SAM 2.1 tiny: the second layer's two attention scores and its value
mix 3 x 67M -> 3 x 21M, the first upscaling 268M -> 137M. The tables (``image_tables``: three
h x d x N or h x N x d projections and an N x 256 one, 10 MiB in fp32) are made once per run,
not stored with the embedding (clicks keep the plain products and the cache its size). Exact
up to float rounding (``tests/engine/test_fast_path.py`` compares both ways against upstream);
fp32 matrices only, and only for the two-layer transformer every SAM 1 / SAM 2.1 decoder has.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TABLE_NAMES = ("fold_t2i_keys", "fold_t2i_values", "fold_i2t_queries", "fold_conv_rows")


@dataclass(frozen=True)
class Mixing:
    """What one layer's image-to-token attention added to the rows, and the norm after it:
    the rows became ``norm(rows + probs^T @ folded)``; ``mean`` and ``rstd`` (N x 1) are that
    norm's statistics (``torch.native_layer_norm``'s)."""

    probs: Any  # heads*T x N
    folded: Any  # heads*T x C
    mean: Any
    rstd: Any

    @functools.cached_property
    def centred(self) -> Any:
        """``folded`` with each row's mean taken out (``F0c``); made once, though the second
        layer's two attentions and the first upscaling each read it."""
        return self.folded - self.folded.mean(dim=1, keepdim=True)


@dataclass(frozen=True)
class FoldTables:
    """``image_tables``' output, read back from a prepared dict."""

    t2i_keys: Any  # h x d x N: Wk_h (Xc * g1)^T of the second layer's token-to-image attention
    t2i_values: Any  # h x N x d: (Xc * g1) Wv_h^T
    i2t_queries: Any  # h x d x N: Wq_h (Xc * g1)^T of its image-to-token attention
    conv_rows: Any  # N x 4*C1: Xc @ H (``ConvFold``)

    @classmethod
    def read(cls, prepared: Mapping[str, Any]) -> FoldTables | None:
        if not all(name in prepared for name in TABLE_NAMES):
            return None
        return cls(*(prepared[name] for name in TABLE_NAMES))


@dataclass(frozen=True)
class SecondLayerInput:
    """What the second layer's folded attentions read in place of its input rows: the run's
    tables, the first layer's ``Mixing`` and that layer's ``norm4``."""

    tables: FoldTables
    previous: Mixing
    norm: Any


@dataclass(frozen=True)
class ConvFold:
    """Per-model constants for the first transposed convolution of the folded rows.

    With ``G = diag(g2) @ W`` and ``H = diag(g1) @ G`` (``W``: the convolution as a C x 4*C1
    matrix; ``g2``, ``b2``: the second layer's norm), the convolution of the transformer's
    output rows is::

        r2 * (r1 * (Xc @ H + P0^T @ (F0c @ H)) + P1^T @ (F1 @ G) + b1 @ G - mu2 * (g2 @ W))
            + b2 @ W + bias,

    one N x (2 heads*T + 3) by (2 heads*T + 3) x 4*C1 product and two elementwise passes.
    """

    table_weight: Any  # H
    second_weight: Any  # G
    first_bias_row: Any  # b1 @ G
    centre_row: Any  # g2 @ W
    second_bias_row: Any  # b2 @ W

    @classmethod
    def from_decoder(cls, transformer: Any, conv_weight: Any) -> ConvFold:
        first, second = (layer.norm4 for layer in transformer.layers)
        weight = conv_weight.float()
        g1, b1 = first.weight.detach().float(), first.bias.detach().float()
        g2, b2 = second.weight.detach().float(), second.bias.detach().float()
        second_weight = g2[:, None] * weight
        return cls(table_weight=(g1[:, None] * second_weight).contiguous(),
                   second_weight=second_weight.contiguous(),
                   first_bias_row=b1 @ second_weight, centre_row=g2 @ weight,
                   second_bias_row=b2 @ weight)

    def first_upscaling(self, table: Any, first: Mixing, second: Mixing, conv: Any,
                        added: Any = None) -> Any:
        """What ``conv(rows, added)`` returns for the transformer's output rows (4N x C1,
        block order); ``table`` is ``FoldTables.conv_rows``."""
        import torch

        mixed = torch.cat([first.centred @ self.table_weight,
                           second.folded @ self.second_weight, self.first_bias_row[None],
                           self.centre_row[None], self.second_bias_row[None]])
        n = table.shape[0]
        # Built as rows (each piece already one) and handed to the product transposed:
        # concatenating transposed pieces costs more than the folding saves.
        weights = torch.cat([first.probs * first.rstd.view(1, -1), second.probs,
                             second.mean.new_ones((1, n)), -second.mean.view(1, -1),
                             second.rstd.reciprocal().view(1, -1)])
        inner = (table * first.rstd).addmm_(weights.t(), mixed)
        base = conv.bias if added is None else added.view(n, -1)
        return torch.addcmul(base, inner, second.rstd).view(-1, conv.out_channels)


def image_tables(prepared: Mapping[str, Any], transformer: Any, t2i: Any, i2t: Any,
                 fold: ConvFold) -> dict:
    """The tables for one image (see the module docstring), from its stored rows.

    ``t2i``, ``i2t``: the second layer's attentions as ``_HeadWeights``.
    """
    rows = prepared["image_rows"].float()
    centred = rows - rows.mean(dim=1, keepdim=True)
    scaled = centred * transformer.layers[0].norm4.weight.detach().float()
    return {"fold_t2i_keys": (t2i.k @ scaled.t()).contiguous(),
            "fold_t2i_values": (scaled @ t2i.v_t).contiguous(),
            "fold_i2t_queries": (i2t.q @ scaled.t()).contiguous(),
            "fold_conv_rows": centred @ fold.table_weight}


def _image_scores(per_head: Any, table: Any, folded_rows: Any, previous: Mixing,
                  centred: Any, norm: Any) -> Any:
    """``folded_rows @ keys1^T`` (heads*T x N) for ``per_head`` vectors (h x T x d) whose
    folded rows (heads*T x C) are ``per_head`` through the projection ``table`` was made with."""
    import torch

    heads, t, _ = per_head.shape
    scores = torch.bmm(per_head, table).view(heads * t, -1)
    scores.addmm_((folded_rows * norm.weight) @ centred.t(), previous.probs)
    return scores.mul_(previous.rstd.view(1, -1)).add_((folded_rows @ norm.bias)[:, None])


def token_to_image(w: Any, q_in: Any, tables: FoldTables, pe_keys: Any, previous: Mixing,
                   norm: Any) -> Any:
    """The second layer's ``Attention(q, k=keys1 + pe, v=keys1)`` (tokens attend to the rows)
    from the tables; ``norm`` is the first layer's ``norm4``, ``previous`` its ``Mixing``."""
    import torch

    _, t, c = q_in.shape
    heads, d = w.heads, w.head_dim
    q = w.per_head(w.module.q_proj, q_in) * (1.0 / math.sqrt(d))
    centred = previous.centred
    folded_q = torch.bmm(q, w.k).reshape(heads * t, c)
    scores = _image_scores(q, tables.t2i_keys, folded_q, previous, centred, norm)
    scores += torch.bmm(q, pe_keys).view(heads * t, -1)
    probs = torch.softmax(scores, dim=-1)  # hT x N; rows sum to 1
    weighted = probs.mul_(previous.rstd.view(1, -1))
    values = torch.bmm(weighted.view(heads, t, -1), tables.t2i_values)  # h x T x d
    through = weighted @ previous.probs.t()  # hT x hT0
    mixed_values = torch.matmul(centred * norm.weight, w.v_t)  # h x hT0 x d
    values.baddbmm_(through.view(heads, t, -1), mixed_values)
    values += torch.matmul(norm.bias, w.v_t)[:, None]  # the weights sum to 1
    return w.output(values)


def image_to_token_scores(w: Any, tables: FoldTables, q_tokens: Any, pe_queries: Any,
                          previous: Mixing, norm: Any) -> Any:
    """The second layer's image-to-token scores, h x T x N, from the tables (as
    ``fast_decoder._image_to_token_scores`` computes them from ``keys1``)."""
    import torch

    _, t, c = q_tokens.shape
    heads, d = w.heads, w.head_dim
    k = w.per_head(w.module.k_proj, q_tokens) * (1.0 / math.sqrt(d))
    folded_q = torch.bmm(k, w.q).reshape(heads * t, c)
    scores = _image_scores(k, tables.i2t_queries, folded_q, previous, previous.centred, norm)
    scores.add_(torch.bmm(k, w.q_bias).reshape(heads * t, 1))
    scores += torch.bmm(k, pe_queries).view(heads * t, -1)
    return scores.view(heads, t, -1)


@dataclass(frozen=True)
class FoldedRows:
    """The transformer's output rows, kept as ``ConvFold`` writes them for the first
    upscaling (``FastMaskDecoder._upscale`` takes them in place of the N x C rows)."""

    fold: ConvFold
    table: Any  # FoldTables.conv_rows
    first: Mixing
    second: Mixing

    def first_upscaling(self, conv: Any, added: Any = None) -> Any:
        return self.fold.first_upscaling(self.table, self.first, self.second, conv, added)
