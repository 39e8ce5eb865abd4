"""A faster mask decoder for SAM 1 and SAM 2.1, computing what the upstream decoder computes.

The upstream ``MaskDecoder.predict_masks`` spends most of a click on work that a CPU does
badly: projecting all 4096 image tokens to queries, keys and values in every cross-attention,
softmax along a last dimension of 5-10 tokens, two transposed convolutions, a hand-written
channel LayerNorm, and strided copies between the ``B x C x H x W`` and ``B x N x C`` layouts.
``FastMaskDecoder`` reads the upstream modules' weights and evaluates the same function in an
order that suits a CPU; the token-side layers (self-attention, MLPs, norms, heads) are the
upstream modules themselves, called as they are.

* Cross-attention by associativity. With ``T`` tokens (5-10) against ``N = 4096`` image tokens,
  ``softmax(q Wk (X + pe)^T) X Wv^T`` is evaluated as ``(softmax((q Wk) (X + pe)^T) X) Wv^T``:
  the 4096 x 256 image matrix is multiplied by ``heads x T`` vectors instead of being projected
  (about 3x fewer multiply-adds). The key bias only shifts each softmax row by a constant, so it
  drops out exactly. The image-to-token direction folds the query projection into the token
  keys and the output projection into the token values in the same way.
* Transposed convolutions (kernel 2, stride 2, so no overlap) are one matrix product each on
  pixel rows; the pixels stay in "block order" ``(i, j, ki, kj, ...)`` through both upscaling
  steps and the channel LayerNorm becomes ``F.layer_norm`` on the last axis. Only the final
  ``M x 256 x 256`` logits are permuted back to image order.
* ``prepare`` (called once per image, at encode time) stores the image embedding as rows and
  SAM 2's high-resolution features already in block order, so a click repeats none of it.

All arithmetic is fp32, so the results equal upstream's up to float rounding (logits within
about 1e-5; ``tests/test_fast_path.py``). Running the image-side products in bf16 (AMX) was
measured too: about 15% faster per click, but it flipped 0.2-0.4% of mask pixels against the
fp32 decoder with random weights, so it is not used.

Frames and shapes: image rows ``N x 256`` with ``N = 64 * 64`` in row-major ``(i, j)`` order;
low-res logits ``1 x M x 256 x 256`` exactly as upstream (M = 4 before selection).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GRID = 64  # side of the image embedding (1024 / 16) for every SAM 1 / SAM 2.1 model


@dataclass(frozen=True)
class _ConvT:
    """A kernel-2 stride-2 ConvTranspose2d as a matrix: rows x C_in -> rows x (4 * C_out).

    Output columns are ordered ``(ki, kj, c_out)``, so viewing the product as
    ``(rows * 4) x C_out`` lists each input pixel's four children in ``(ki, kj)`` order.
    """

    weight: Any  # C_in x (4 * C_out)
    bias: Any  # 4 * C_out
    out_channels: int

    @classmethod
    def from_module(cls, conv: Any) -> _ConvT:
        c_in, c_out, kh, kw = conv.weight.shape
        if (kh, kw) != (2, 2) or tuple(conv.stride) != (2, 2) or tuple(conv.padding) != (0, 0):
            raise ValueError("FastMaskDecoder expects 2x2 stride-2 transposed convolutions")
        weight = conv.weight.detach().permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)
        return cls(weight.contiguous(), conv.bias.detach().repeat(4), c_out)

    @property
    def channel_bias(self) -> Any:
        """The bias per output channel (``bias`` repeats it for each of the 4 children)."""
        return self.bias[: self.out_channels]

    def __call__(self, rows: Any, added: Any = None) -> Any:
        """``rows`` N x C_in -> 4N x C_out, plus ``added`` (4N x C_out, any float dtype).

        ``added`` already includes the bias (``prepare`` folds it in); without it the bias is
        added here.
        """
        import torch

        if added is None:
            return torch.addmm(self.bias, rows, self.weight).view(-1, self.out_channels)
        return torch.mm(rows, self.weight).view(-1, self.out_channels).add_(added)


class FastMaskDecoder:
    """Evaluates an upstream SAM 1 / SAM 2.1 ``MaskDecoder`` (plus its selection rule) quickly.

    Args:
        mask_decoder: ``segment_anything`` or ``sam2`` ``MaskDecoder`` (weights are read, and
            the token-side submodules are called; nothing is modified).
        dense_pe: the prompt encoder's ``get_dense_pe()``, 1 x 256 x 64 x 64 (constant).
        no_mask_embed: the prompt encoder's ``no_mask_embed.weight``, 1 x 256.
    """

    def __init__(self, mask_decoder: Any, dense_pe: Any, no_mask_embed: Any) -> None:
        import torch

        self.decoder = mask_decoder
        self.family = "sam2" if hasattr(mask_decoder, "pred_obj_scores") else "sam1"
        self.pe_rows = dense_pe.detach()[0].flatten(1).t().contiguous().float()  # N x C
        self.no_mask_row = no_mask_embed.detach().reshape(1, -1).float()
        tokens = [mask_decoder.iou_token.weight, mask_decoder.mask_tokens.weight]
        self.token_offset = 0
        if getattr(mask_decoder, "pred_obj_scores", False):
            tokens.insert(0, mask_decoder.obj_score_token.weight)
            self.token_offset = 1
        self.output_tokens = torch.cat(tokens, dim=0).detach()
        self.high_res = bool(getattr(mask_decoder, "use_high_res_features", False))
        conv1, norm, act1, conv2, act2 = mask_decoder.output_upscaling
        self.conv1 = _ConvT.from_module(conv1)
        self.conv2 = _ConvT.from_module(conv2)
        self.norm, self.act1, self.act2 = norm, act1, act2

    # -- once per image ----------------------------------------------------------------------
    def prepare(self, image_embed: Any, high_res_feats: Any = None, dtype: Any = None) -> dict:
        """Image features in the layouts a click needs (stored in the embedding).

        Args:
            image_embed: 1 x 256 x 64 x 64.
            high_res_feats: SAM 2 only: (1 x 32 x 256 x 256, 1 x 64 x 128 x 128).
            dtype: storage dtype (default: unchanged); bf16 halves the embedding's bytes.

        Returns:
            ``image_rows`` N x 256; SAM 2 also ``feat_s1`` (4N x 64) and ``feat_s0``
            (16N x 32) in block order, each plus the bias of the transposed convolution it is
            added to.
        """
        dtype = dtype or image_embed.dtype
        rows = image_embed[0].flatten(1).t()
        prepared = {"image_rows": rows.to(dtype).contiguous()}
        if self.high_res:
            feat_s0, feat_s1 = high_res_feats
            c1, c0 = feat_s1.shape[1], feat_s0.shape[1]
            # s1[c, 2i+ki, 2j+kj] -> row ((i*64 + j)*2 + ki)*2 + kj
            s1 = feat_s1[0].reshape(c1, GRID, 2, GRID, 2).permute(1, 3, 2, 4, 0)
            # s0[c, 4i+2ki+ki2, 4j+2kj+kj2] -> row of (i, j, ki, kj, ki2, kj2)
            s0 = feat_s0[0].reshape(c0, GRID, 2, 2, GRID, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
            # The transposed convolutions' biases are folded in here, once per image.
            s1 = s1.reshape(-1, c1) + self.conv1.channel_bias
            s0 = s0.reshape(-1, c0) + self.conv2.channel_bias
            prepared["feat_s1"] = s1.to(dtype).contiguous()
            prepared["feat_s0"] = s0.to(dtype).contiguous()
        return prepared

    def restore(self, prepared: Mapping[str, Any]) -> dict:
        """Inverse of ``prepare``: upstream layouts in fp32 (for comparisons and tests).

        Returns ``image_embed`` 1 x 256 x 64 x 64 and, for SAM 2, ``high_res_feats``
        (1 x 32 x 256 x 256, 1 x 64 x 128 x 128); equal to what ``prepare`` was given up to the
        rounding of the folded bias (and of the storage dtype).
        """
        rows = prepared["image_rows"].float()
        restored = {"image_embed": rows.t().reshape(1, -1, GRID, GRID)}
        if self.high_res:
            s1, s0 = prepared["feat_s1"].float(), prepared["feat_s0"].float()
            c1, c0 = s1.shape[1], s0.shape[1]
            s1, s0 = s1 - self.conv1.channel_bias, s0 - self.conv2.channel_bias
            s1 = s1.reshape(GRID, GRID, 2, 2, c1).permute(4, 0, 2, 1, 3)
            s0 = s0.reshape(GRID, GRID, 2, 2, 2, 2, c0).permute(6, 0, 2, 4, 1, 3, 5)
            restored["high_res_feats"] = (
                s0.reshape(1, c0, 4 * GRID, 4 * GRID), s1.reshape(1, c1, 2 * GRID, 2 * GRID)
            )
        return restored

    # -- once per click ----------------------------------------------------------------------
    def __call__(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any, multimask: bool
    ) -> tuple[Any, Any]:
        """Low-res logits (1 x C x 256 x 256) and scores (1 x C), selected as upstream does.

        Args:
            prepared: ``prepare``'s output for the image.
            sparse: the prompt encoder's sparse embeddings, 1 x T x 256.
            dense: its dense embeddings 1 x 256 x 64 x 64, or None when there is no mask input
                (then the constant ``no_mask_embed`` is added, as upstream does).
            multimask: three candidates (outputs 1-3) or one (output 0; SAM 2.1 falls back to
                the best of 1-3 when output 0 is unstable, as upstream).
        """
        masks, iou = self.predict_masks(prepared, sparse, dense)
        if multimask:
            return masks[:, 1:], iou[:, 1:]
        if self.family == "sam2" and self.decoder.dynamic_multimask_via_stability:
            return self.decoder._dynamic_multimask_via_stability(masks, iou)
        return masks[:, 0:1], iou[:, 0:1]

    def predict_masks(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any
    ) -> tuple[Any, Any]:
        """All mask outputs (1 x 4 x 256 x 256) and their scores (1 x 4), before selection."""
        import torch

        if sparse.shape[0] != 1:
            raise ValueError("FastMaskDecoder decodes one object per call (batch size 1)")
        tokens = torch.cat([self.output_tokens[None], sparse], dim=1)
        if dense is None:
            src = prepared["image_rows"] + self.no_mask_row  # promotes bf16 storage to fp32
        else:
            src = prepared["image_rows"] + dense[0].flatten(1).t()
        queries, keys = self._transformer(src[None].float(), tokens)
        s = self.token_offset
        decoder = self.decoder
        mask_tokens = queries[:, s + 1: s + 1 + decoder.num_mask_tokens]
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
            dim=1,
        )[0]  # M x C2
        upscaled = self._upscale(keys[0], prepared)  # 16N x C2, block order
        logits = torch.mm(upscaled, hyper_in.t())  # 16N x M
        masks = logits.view(GRID, GRID, 2, 2, 2, 2, -1).permute(6, 0, 2, 4, 1, 3, 5)
        masks = masks.reshape(1, -1, 4 * GRID, 4 * GRID)
        iou = decoder.iou_prediction_head(queries[:, s])
        return masks, iou

    def _upscale(self, rows: Any, prepared: Mapping[str, Any]) -> Any:
        """N x 256 -> 16N x C2 through both transposed convolutions, in block order."""
        from torch.nn import functional as F

        x = self.conv1(rows, prepared.get("feat_s1"))  # 4N x C1
        x = self.act1(F.layer_norm(x, x.shape[-1:], self.norm.weight, self.norm.bias,
                                   self.norm.eps))
        x = self.conv2(x, prepared.get("feat_s0"))  # 16N x C2
        return self.act2(x)

    def _transformer(self, keys: Any, tokens: Any) -> tuple[Any, Any]:
        """``TwoWayTransformer.forward`` on rows: (queries 1 x T x C, keys N x C)."""
        transformer = self.decoder.transformer
        keys = keys[0]
        queries = tokens
        for layer in transformer.layers:
            queries, keys = self._block(layer, queries, keys, tokens)
        q = queries + tokens
        attn = _token_to_image(transformer.final_attn_token_to_image, q, keys + self.pe_rows, keys)
        return transformer.norm_final_attn(queries + attn), keys[None]

    def _block(self, layer: Any, queries: Any, keys: Any, query_pe: Any) -> tuple[Any, Any]:
        """``TwoWayAttentionBlock.forward`` with the two image-side attentions folded."""
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        keys_pe = keys + self.pe_rows
        q = queries + query_pe
        queries = layer.norm2(
            queries + _token_to_image(layer.cross_attn_token_to_image, q, keys_pe, keys)
        )
        queries = layer.norm3(queries + layer.mlp(queries))
        q = queries + query_pe
        keys = _image_to_token(layer.cross_attn_image_to_token, keys_pe, q, queries, keys)
        return queries, layer.norm4(keys)


def _heads(attention: Any) -> tuple[int, int]:
    heads = attention.num_heads
    return heads, attention.internal_dim // heads


def _token_to_image(attention: Any, q_in: Any, keys_pe: Any, keys: Any) -> Any:
    """Tokens (1 x T x C) attend to image rows: upstream ``Attention(q, k=keys_pe, v=keys)``.

    ``keys_pe`` and ``keys`` are N x C.
    """
    import torch

    _, t, c = q_in.shape
    heads, d = _heads(attention)
    q = attention.q_proj(q_in).view(t, heads, d)
    # scores[h, t, n] = q[t, h] . (Wk_h x_n + bk_h); the bias term is constant along n.
    qk = torch.einsum("thd,hdc->htc", q, attention.k_proj.weight.view(heads, d, c))
    qk = qk.reshape(heads * t, c) * (1.0 / math.sqrt(d))
    probs = torch.softmax(torch.mm(qk, keys_pe.t()), dim=-1)  # hT x N
    # Rows of probs sum to 1, so the value bias passes through unchanged.
    mixed = torch.mm(probs, keys).view(heads, t, c)
    out = torch.einsum("htc,hdc->thd", mixed, attention.v_proj.weight.view(heads, d, c))
    out = out + attention.v_proj.bias.view(heads, d)
    return attention.out_proj(out.reshape(1, t, heads * d))


def _image_to_token(attention: Any, keys_pe: Any, q_tokens: Any, tokens: Any, keys: Any) -> Any:
    """``keys + Attention(q=keys_pe, k=q_tokens, v=tokens)`` (image rows attend to tokens).

    ``keys_pe`` is N x C; ``keys`` (N x C) is the residual added in.
    """
    import torch

    _, t, c = q_tokens.shape
    heads, d = _heads(attention)
    scale = 1.0 / math.sqrt(d)
    k = attention.k_proj(q_tokens).view(t, heads, d)
    v = attention.v_proj(tokens).view(t, heads, d)
    # scores[h, t, n] = (Wq_h x_n + bq_h) . k[t, h]
    folded_q = torch.einsum("hdc,thd->htc", attention.q_proj.weight.view(heads, d, c), k)
    folded_b = torch.einsum("hd,thd->ht", attention.q_proj.bias.view(heads, d), k)
    scores = torch.addmm(folded_b.reshape(heads * t, 1) * scale,
                         folded_q.reshape(heads * t, c) * scale, keys_pe.t())  # hT x N
    probs = torch.softmax(scores.view(heads, t, -1), dim=1).view(heads * t, -1)
    # out_n = sum_h P_h[n] (v_h Wo_h^T) + bo; each head's probabilities sum to 1 over its
    # tokens, so bo / heads on every folded value row adds bo exactly once.
    folded_v = torch.einsum("thd,chd->htc", v, attention.out_proj.weight.view(c, heads, d))
    folded_v = folded_v.reshape(heads * t, c) + attention.out_proj.bias / heads
    return torch.addmm(keys, probs.t(), folded_v)
