"""The video fast path's memory attention: bf16 products where the exact path has fp32 ones.

The memory attention (4 layers of self-attention over a frame's 4,096 tokens and cross-attention
from them to up to 7 x 4,096 memory tokens plus object pointers) was half of a tracked frame in
the fast path, which ran it in fp32: 1.68 s of 3.2 s a frame for SAM 2.1 tiny on a 2-core
EPYC with AVX512-BF16 (``benchmarks/profile_video.py --precision bf16``). Here, for the
``bf16`` video precision only:

* both attentions run in bf16 (``attention_bf16``: on a CPU without AMX as two bf16
  products, since PyTorch's fused CPU kernel runs bf16 at fp32 speed there; elsewhere the
  fused kernel on bf16 inputs);
* with the two products, the cross-attention weights the 64-channel memory itself and
  applies ``v_proj`` after:
  ``P (M W + b) = (P M) W + b`` because each row of the softmax ``P`` sums to one, so the
  second product has 64 columns instead of 256 (one head, as SAM 2.1's memory attention);
* the feed-forward layers run with bf16 weights; the residual stream and the norms stay fp32.

Rotary encodings, projections and norms are upstream's, in fp32. The exact ``fp32`` path
never comes here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from sam2.modeling.position_encoding import apply_rotary_enc
from sam2.modeling.sam.transformer import RoPEAttention
from torch import nn

from ...speed.bf16_attention import attention_bf16, prefers_bf16_products


class Bf16RoPEAttention(RoPEAttention):
    """``RoPEAttention`` (same parameters and call) whose attention runs in bf16.

    Made from an upstream instance by ``from_upstream``, so the layer's
    ``isinstance(..., RoPEAttention)`` checks still hold.
    """

    @classmethod
    def from_upstream(cls, attention: RoPEAttention) -> Bf16RoPEAttention:
        attention.__class__ = cls  # same state, this forward
        return attention

    @property
    def folds_values(self) -> bool:
        """One head and values narrower than the heads: the bf16 products weight the raw
        values and project them after (the fused kernel, where it is used, gets them
        projected, as upstream)."""
        return self.num_heads == 1 and self.kv_in_dim < self.internal_dim

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                num_k_exclude_rope: int = 0) -> torch.Tensor:
        fold = self.folds_values and prefers_bf16_products(q.device)
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = v.unsqueeze(1) if fold else self._separate_heads(self.v_proj(v), self.num_heads)
        # Rotary encoding, as upstream's forward.
        side = math.sqrt(q.shape[-2])
        self.freqs_cis = self.freqs_cis.to(q.device)
        if self.freqs_cis.shape[0] != q.shape[-2]:
            self.freqs_cis = self.compute_cis(end_x=side, end_y=side).to(q.device)
        if q.shape[-2] != k.shape[-2] and not self.rope_k_repeat:
            raise ValueError("keys longer than queries need rope_k_repeat")
        num_k_rope = k.size(-2) - num_k_exclude_rope
        q, k[:, :, :num_k_rope] = apply_rotary_enc(
            q, k[:, :, :num_k_rope], freqs_cis=self.freqs_cis, repeat_freqs_k=self.rope_k_repeat)
        out = attention_bf16(q, k, v).float()
        if fold:
            out = self.v_proj(out)
        return self.out_proj(self._recombine_heads(out))


class Bf16Linear(nn.Module):
    """A ``Linear`` with bf16 weights that takes any float input and returns ``out_dtype``."""

    def __init__(self, linear: nn.Linear, out_dtype: torch.dtype) -> None:
        super().__init__()
        self.linear = linear.to(torch.bfloat16)
        self.out_dtype = out_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.to(torch.bfloat16)).to(self.out_dtype)


def accelerate_memory_attention(memory_attention: Any) -> None:
    """Convert a ``sam2`` ``MemoryAttention`` in place for the bf16 video path (module doc)."""
    for layer in memory_attention.layers:
        for name in ("self_attn", "cross_attn_image"):
            attention = getattr(layer, name)
            if isinstance(attention, RoPEAttention) and not isinstance(
                    attention, Bf16RoPEAttention):
                setattr(layer, name, Bf16RoPEAttention.from_upstream(attention))
        if not isinstance(layer.linear1, Bf16Linear):
            # linear1 hands bf16 to the activation and linear2; linear2 widens to the
            # fp32 residual stream.
            layer.linear1 = Bf16Linear(layer.linear1, torch.bfloat16)
            layer.linear2 = Bf16Linear(layer.linear2, torch.float32)
