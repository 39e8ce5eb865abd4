"""Faster image encoders: the upstream modules with bf16 weights and fused attention.

Used only for the fast precisions (never for the exact "fp32" mode). Both functions convert a
backend's own model in place, so a fast backend holds one bf16 copy of the encoder's matrix
weights (half the memory of fp32) and casts no weights per call.

SAM 1 (ViT): each block's attention is replaced by ``RelPosSdpaAttention``, which gives the
same result as the upstream ``Attention`` but runs through ``scaled_dot_product_attention``.
Upstream materialises a ``heads x HW x HW`` score matrix and adds the decomposed relative
position terms to it (for the global blocks that is 12-16 x 4096 x 4096 values, written and
read several times). Here the relative-position terms are folded into the dot product itself:

    q.k * scale + q.Rh[h_q, h_k] + q.Rw[w_q, w_k]
        = [q * scale, q.Rh[h_q, :], q.Rw[w_q, :]] . [k, onehot(h_k), onehot(w_k)]

so the fused kernel never stores the score matrix. The position tables (``get_rel_pos``) are
computed once per window size instead of on every call. Attention and MLP run with bf16
weights, while the residual stream and the norms stay fp32 (``MixedPrecisionBlock``): casting
the whole ViT to bf16 was about 30% faster again, but its rounding built up over the 32 blocks
of ViT-H (median mask IoU 0.989 against fp32 on the benchmark's photos, below the 0.99 asked).

SAM 2.1 (Hiera) has its own: ``sam_backends/families/sam2/fast_encoder.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# This module is imported only when a fast backend is built, so torch is imported at the top.


class RelPosSdpaAttention(nn.Module):
    """Drop-in for ``segment_anything.modeling.image_encoder.Attention`` (same parameters).

    Input/output: ``B x H x W x C`` (B windows, or one global map), as upstream.
    """

    def __init__(self, attention: Any) -> None:
        super().__init__()
        self.qkv = attention.qkv
        self.proj = attention.proj
        self.num_heads = attention.num_heads
        self.scale = attention.scale
        self.use_rel_pos = attention.use_rel_pos
        if self.use_rel_pos:
            self.rel_pos_h = attention.rel_pos_h
            self.rel_pos_w = attention.rel_pos_w
        # (H, W, dtype) -> (Rh, Rw, key one-hots): a per-module cache of constant tables.
        self._tables: dict[tuple, tuple] = {}

    def _position_tables(self, height: int, width: int, dtype: Any) -> tuple:
        key = (height, width, dtype)
        if key not in self._tables:
            from segment_anything.modeling.image_encoder import get_rel_pos

            rel_h = get_rel_pos(height, height, self.rel_pos_h).to(dtype)  # H x H x d
            rel_w = get_rel_pos(width, width, self.rel_pos_w).to(dtype)  # W x W x d
            rows = torch.arange(height).repeat_interleave(width)
            cols = torch.arange(width).repeat(height)
            onehot = torch.cat([F.one_hot(rows, height), F.one_hot(cols, width)], dim=-1)
            self._tables[key] = (rel_h, rel_w, onehot.to(dtype=dtype, device=rel_h.device))
        return self._tables[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # B x heads x HW x d
        dim = q.shape[-1]
        if not self.use_rel_pos:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        else:
            rel_h, rel_w, onehot = self._position_tables(height, width, q.dtype)
            grid_q = q.reshape(batch * heads, height, width, dim)
            pos_h = torch.einsum("bhwc,hkc->bhwk", grid_q, rel_h)
            pos_w = torch.einsum("bhwc,wkc->bhwk", grid_q, rel_w)
            q = torch.cat(
                [q * self.scale,
                 pos_h.reshape(batch, heads, height * width, height),
                 pos_w.reshape(batch, heads, height * width, width)],
                dim=-1,
            )
            k = torch.cat([k, onehot.expand(batch, heads, -1, -1)], dim=-1)
            v = F.pad(v, (0, height + width))  # the fused kernel wants one head size for q, k, v
            out = F.scaled_dot_product_attention(q, k, v, scale=1.0)[..., :dim]
        out = out.reshape(batch, heads, height, width, dim).permute(0, 2, 3, 1, 4)
        return self.proj(out.reshape(batch, height, width, heads * dim))


class MixedPrecisionBlock(nn.Module):
    """An upstream ViT ``Block`` whose matrix work runs in bf16 and whose residual stream doesn't.

    The residual stream and both LayerNorms stay fp32; attention (``RelPosSdpaAttention``) and
    the MLP run with bf16 weights. Rounding then does not accumulate along the 12-32 blocks of
    the residual stream, which keeps the embedding closer to fp32 than casting everything.
    Input/output: ``1 x 64 x 64 x C`` fp32.
    """

    def __init__(self, block: Any, dtype: Any) -> None:
        super().__init__()
        attention = block.attn
        if not isinstance(attention, RelPosSdpaAttention):
            attention = RelPosSdpaAttention(attention)
        self.norm1, self.norm2 = block.norm1, block.norm2
        self.attn = attention.to(dtype)
        self.mlp = block.mlp.to(dtype)
        self.window_size = block.window_size
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from segment_anything.modeling.image_encoder import window_partition, window_unpartition

        height, width = x.shape[1], x.shape[2]
        y = self.norm1(x).to(self.dtype)
        if self.window_size > 0:
            y, pad_hw = window_partition(y, self.window_size)
        y = self.attn(y)
        if self.window_size > 0:
            y = window_unpartition(y, self.window_size, pad_hw, (height, width))
        x = x + y
        return x + self.mlp(self.norm2(x).to(self.dtype))


def accelerate_sam1_encoder(image_encoder: Any, dtype: Any) -> None:
    """Convert a ``segment_anything`` ``ImageEncoderViT`` in place for ``sam1_encode``.

    Blocks become ``MixedPrecisionBlock`` (bf16 weights for attention and MLP), the patch
    embedding runs in ``dtype``; positional embedding, norms and the neck stay fp32.
    """
    image_encoder.patch_embed.to(dtype)
    for index, block in enumerate(image_encoder.blocks):
        if not isinstance(block, MixedPrecisionBlock):
            image_encoder.blocks[index] = MixedPrecisionBlock(block, dtype)


def sam1_encode(image_encoder: Any, image: torch.Tensor) -> torch.Tensor:
    """``ImageEncoderViT.forward`` for an encoder converted by ``accelerate_sam1_encoder``.

    Args:
        image: the normalised, padded input, 1 x 3 x 1024 x 1024 fp32.

    Returns:
        The image embedding, 1 x 256 x 64 x 64 fp32.
    """
    dtype = image_encoder.patch_embed.proj.weight.dtype
    x = image_encoder.patch_embed(image.to(dtype)).float()
    if image_encoder.pos_embed is not None:
        x = x + image_encoder.pos_embed
    for block in image_encoder.blocks:
        x = block(x)
    return image_encoder.neck(x.permute(0, 3, 1, 2))
