"""The SAM 2.1 image encoder of the fast precisions: bf16 weights, constants held once.

Hiera's trunk already uses ``scaled_dot_product_attention``; bf16 weights are what it needs (its
12-48 blocks stay within the fidelity asked when cast whole). The FPN neck and the two 1x1
projections of the high-resolution levels run in bf16 too; everything a click runs stays fp32.
Two more changes, for the image path and the video fast path alike:

* on a CPU without AMX, the global attention blocks (4,096 x 4,096 tokens) run as
  ``bf16_attention`` in bf16, because PyTorch's fused CPU kernel runs bf16 at fp32 speed there;
* the positional tables that upstream recomputes or copies on every forward are held once
  (same values).

Measured on a 2-core AMD EPYC with AVX512-BF16 (no AMX), SAM 2.1 tiny at 1024 x 1024, bf16:
the encoder went from 1.73 s to 1.11 s (best of 3 each; global attention 3 x 214 ms before).
"""

from __future__ import annotations

from typing import Any

import torch
from sam2.modeling.backbones.hieradet import Hiera, do_pool
from sam2.modeling.position_encoding import PositionEmbeddingSine
from torch import nn
from torch.nn import functional as F

from ...speed.bf16_attention import attention_bf16

GLOBAL_ATTENTION_PAIRS = 1024 * 1024  # queries x keys from which bf16_attention wins


class Bf16GlobalAttention(nn.Module):
    """Hiera's ``MultiScaleAttention`` (same parameters) whose global attention, the 4,096 x
    4,096 tokens of the third stage's global blocks, runs as ``bf16_attention`` on a CPU without
    AMX: PyTorch's fused kernel gains nothing from bf16 there (``speed.bf16_attention``).
    Windowed attention (at most 64 x 64 tokens a window), GPUs and AMX CPUs keep the fused
    kernel.
    """

    def __init__(self, attention: Any) -> None:
        super().__init__()
        self.qkv, self.proj = attention.qkv, attention.proj
        self.num_heads, self.q_pool = attention.num_heads, attention.q_pool
        self.dim, self.dim_out = attention.dim, attention.dim_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1)
        q, k, v = torch.unbind(qkv, 2)
        if self.q_pool:
            q = do_pool(q.reshape(batch, height, width, -1), self.q_pool)
            height, width = q.shape[1:3]
            q = q.reshape(batch, height * width, self.num_heads, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if q.shape[-2] * k.shape[-2] >= GLOBAL_ATTENTION_PAIRS:
            # The products where they win; elsewhere the fused kernel on the same bf16 inputs.
            out = attention_bf16(q, k, v).to(x.dtype)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, height, width, -1))


def _cache_positional_tables(image_encoder: Any) -> None:
    """Hold the encoder's two per-forward constants once (values unchanged, so exact).

    Hiera's ``_get_pos_embed`` interpolates its positional table bicubically on every call
    (34 ms for SAM 2.1 tiny on a 2-core EPYC), and the FPN neck's sine encoding returns a fresh
    copy of its cached table for every level (256 x 256 x 256 values at the first level: 74 ms),
    which the neck then casts to the features' dtype (another copy).
    """
    trunk = image_encoder.trunk
    if isinstance(trunk, Hiera) and not isinstance(trunk, _CachedPosEmbedHiera):
        trunk.__class__ = _CachedPosEmbedHiera
        trunk._pos_embeds = {}
    encoding = image_encoder.neck.position_encoding
    if isinstance(encoding, PositionEmbeddingSine) and not isinstance(
            encoding, _SharedSineEncoding):
        encoding.__class__ = _SharedSineEncoding
        encoding._typed = {}


class _CachedPosEmbedHiera(Hiera):
    """Hiera whose positional table for a feature size is computed once (a fixed weight)."""

    def _get_pos_embed(self, hw: tuple[int, int]) -> torch.Tensor:
        key = (tuple(hw), self.pos_embed.dtype, self.pos_embed.device)
        if key not in self._pos_embeds:
            self._pos_embeds[key] = super()._get_pos_embed(hw)
        return self._pos_embeds[key]


class _SharedSineEncoding(PositionEmbeddingSine):
    """The neck's sine encoding, held once per size and dtype and handed out as a view.

    Its readers only read it (``SAM2Base`` flattens and adds it), as they read upstream's
    copy; a batch of B shares one table through ``expand``. Upstream's own fp32 cache entry
    for the size is dropped once a bf16 table replaces it (67 MB at the first level of SAM 2.1).
    """

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        key = (height, width, x.dtype, x.device)
        if key not in self._typed:
            self._typed[key] = self._pe(1, x.device, height, width).to(x.dtype)
            if x.dtype != torch.float32:
                self.cache.pop((height, width), None)
        return self._typed[key].expand(x.shape[0], -1, -1, -1)


def accelerate_sam2_encoder(model: Any, dtype: Any) -> None:
    """Convert a ``sam2`` model's image path to ``dtype`` in place.

    That is the ``ImageEncoder`` (Hiera trunk + FPN neck) and the mask decoder's ``conv_s0`` /
    ``conv_s1``, which ``SAM2Base.forward_image`` applies to the high-resolution levels at
    encode time. The prompt encoder and the rest of the mask decoder stay fp32. The encoder's
    positional tables are computed once (``_cache_positional_tables``), and in bf16 the global
    attention blocks run as ``Bf16GlobalAttention``.
    """
    model.image_encoder.to(dtype)
    _cache_positional_tables(model.image_encoder)
    if dtype == torch.bfloat16:
        for block in model.image_encoder.trunk.blocks:
            if not isinstance(block.attn, Bf16GlobalAttention):
                block.attn = Bf16GlobalAttention(block.attn)
    decoder = model.sam_mask_decoder
    if getattr(decoder, "use_high_res_features", False):
        decoder.conv_s0.to(dtype)
        decoder.conv_s1.to(dtype)
