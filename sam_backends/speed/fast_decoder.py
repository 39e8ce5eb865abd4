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
* Only the selected outputs' logits are made (upstream makes all four, then picks).
* The first layer's image side is the same for every click on an image (the image rows plus
  the constant ``no_mask_embed``), so ``prepare`` projects it once: the first layer's
  token-to-image keys and values and its image-to-token queries (``h x d x N`` and
  ``h x N x d``). A click without a mask input then attends with ``heads x T x d`` products
  instead of three products over the full 4096 x 256 rows: 3.4 ms off a 30.5 ms fp32 click
  (SAM 2.1 tiny, 2-core AVX2 EPYC, p50 of 90 clicks each way in one process), for 6 MiB more
  per cached image in fp32 and 3 MiB in bf16 (SAM 1: 4 -> 10 and 2 -> 5 MiB; SAM 2.1: 16 -> 22
  and 8 -> 11 MiB). Features prepared without the projections take the general path.
* A mask input (a refining click: the previous mask's logits) uses the same projections. Its
  dense embedding is the prompt encoder's mask branch ending in a 1 x 1 convolution from 16
  channels, so its rows are ``codes W + b`` (``MaskRows``: codes N x 16): a change of rank 16
  plus a constant row to the rows the projections were made from. Each first-layer product
  gains a term over the 16 code columns instead of being redone over 256, and the constant
  row's share of a token-to-image score is the same for every image row, so softmax drops it.
  A refining click then costs about what a fresh one does (it took the general path before:
  about 10 ms more at one thread, SAM 2.1 tiny, 2-core AVX2 EPYC).
* The final token-to-image attention is run for the IoU and mask tokens only (the other
  tokens' outputs are never read): 5 of 8-10 query rows.
* The positional encoding is constant, so its share of each image-side score,
  ``q . (W_h pe_n)``, comes from tables projected once per model (``pe_keys``, ``pe_queries``,
  ``final_pe_keys``: h x d x N each, 10 MiB in fp32 for the five attentions) instead of adding
  ``pe`` to the 4096 x 256 rows before each product; and without a mask input the first
  layer adds ``no_mask_embed`` to the rows inside its image-to-token product. Two to three
  passes over the rows fewer: about 2 ms off a point at one thread (SAM 2.1 tiny, 45 -> 43 ms
  per grid point of segment everything, 2-core AVX2 EPYC).

Precision (``matrix_dtype``). With fp32 (the default) the results equal upstream's up to float
rounding (logits within about 1e-5; ``tests/engine/test_fast_path.py``). With bf16 (what the fast
backends use) the image-side work runs on the CPU's bf16 units: the attention-score and
token-to-image value products, and the whole upscaling branch (both products, the LayerNorm,
the GELUs and the final mask product, accumulating in fp32). Softmax, the residual stream of
the image rows, every token-side layer and the predicted IoU stay fp32. On this 2-core machine
a click is bound by memory traffic over 4096 x 256 and 65536 x 32 matrices more than by
arithmetic, and bf16 halves that traffic: about 2 ms (10-15%) off each click. Against the
exact path it costs little, because the bf16 encoder already moves the embedding more than
bf16 rounding in the decoder does: on the real photos the median mask IoU against fp32 went
from 0.9979 to 0.9963 (ViT-B) and from 0.9976 to 0.9969 (SAM 2.1 tiny), random weights
(``benchmarks/bench_speed.py`` reports the figures; ``tests/engine/test_fidelity.py`` guards them).

Frames and shapes: image rows ``N x 256`` with ``N = 64 * 64`` in row-major ``(i, j)`` order;
low-res logits ``1 x M x 256 x 256`` exactly as upstream (M = 4 before selection).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import row_folding

GRID = 64  # side of the image embedding (1024 / 16) for every SAM 1 / SAM 2.1 model


@dataclass(frozen=True)
class _ConvT:
    """A kernel-2 stride-2 ConvTranspose2d as a matrix: rows x C_in -> rows x (4 * C_out).

    Output columns are ordered ``(ki, kj, c_out)``, so viewing the product as
    ``(rows * 4) x C_out`` lists each input pixel's four children in ``(ki, kj)`` order.
    ``weight`` is stored in the matrix dtype: with bf16 the product runs on the CPU's bf16
    units (its inputs rounded to bf16) and the result stays in bf16.
    """

    weight: Any  # C_in x (4 * C_out), in the matrix dtype
    bias: Any  # 4 * C_out, fp32
    out_channels: int

    @classmethod
    def from_module(cls, conv: Any, matrix_dtype: Any = None) -> _ConvT:
        c_in, c_out, kh, kw = conv.weight.shape
        if (kh, kw) != (2, 2) or tuple(conv.stride) != (2, 2) or tuple(conv.padding) != (0, 0):
            raise ValueError("FastMaskDecoder expects 2x2 stride-2 transposed convolutions")
        weight = conv.weight.detach().permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)
        weight = weight.to(matrix_dtype or weight.dtype)
        return cls(weight.contiguous(), conv.bias.detach().repeat(4), c_out)

    @property
    def channel_bias(self) -> Any:
        """The bias per output channel (``bias`` repeats it for each of the 4 children)."""
        return self.bias[: self.out_channels]

    def __call__(self, rows: Any, added: Any = None) -> Any:
        """``rows`` N x C_in -> 4N x C_out in the matrix dtype, plus ``added`` (4N x C_out).

        ``added`` already includes the bias (``prepare`` folds it in); without it the bias is
        added here.
        """
        import torch

        if self.weight.dtype != torch.float32:
            product = torch.mm(rows.to(self.weight.dtype), self.weight).view(-1, self.out_channels)
            return product.add_(self.channel_bias.to(product.dtype) if added is None else added)
        if added is None:
            return torch.addmm(self.bias, rows, self.weight).view(-1, self.out_channels)
        # ``added``'s 4N rows are each input row's four children: N x (4 * C_out), the
        # product's own layout, so the product accumulates onto it (one pass less than
        # adding afterwards; about 1.3 ms of the second product on one AVX2 core).
        return torch.addmm(added.view(rows.shape[0], -1), rows, self.weight).view(
            -1, self.out_channels)


@dataclass(frozen=True)
class _StackedMLPs:
    """Same-shaped upstream MLPs (ReLU between layers, no sigmoid) run as one batched MLP.

    The four hypernetwork MLPs, three tiny products each, become three batched products.
    """

    weights: tuple[Any, ...]  # per layer: M x C_in x C_out
    biases: tuple[Any, ...]  # per layer: M x 1 x C_out

    @classmethod
    def from_modules(cls, mlps: Any) -> _StackedMLPs | None:
        """None when the MLPs differ in shape or activation (then they are called one by one)."""
        import torch

        mlps = list(mlps)
        relu = all(type(getattr(m, "act", torch.nn.ReLU())) is torch.nn.ReLU for m in mlps)
        shapes = {tuple(layer.weight.shape for layer in m.layers) for m in mlps}
        if not relu or len(shapes) != 1 or any(m.sigmoid_output for m in mlps):
            return None
        layers = list(zip(*(m.layers for m in mlps)))
        return cls(
            tuple(torch.stack([x.weight.detach().t() for x in group]) for group in layers),
            tuple(torch.stack([x.bias.detach()[None] for x in group]) for group in layers),
        )

    def __call__(self, rows: Any) -> Any:
        """M x C_in (row i goes through MLP i) -> M x C_out."""
        import torch

        x = rows[:, None]
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if index < len(self.weights) - 1:
                x = torch.relu(x)
        return x[:, 0]


@dataclass(frozen=True)
class MaskRows:
    """A mask input's dense embedding as image rows, kept factored: ``codes @ weight + bias``.

    The prompt encoder's mask branch ends in a 1 x 1 convolution from ``k`` (16) channels to
    C (256); ``codes`` are the branch's output before it, as rows. The fast decoder's first
    layer works with this rank-``k`` form (module docstring); ``full()`` is the dense
    embedding's rows for every other use.
    """

    codes: Any  # N x k, fp32, row-major (i, j) like the image rows
    weight: Any  # k x C: the 1 x 1 convolution's weight, transposed
    bias: Any  # 1 x C

    @classmethod
    def of(cls, prompt_encoder: Any, masks: Any) -> MaskRows | None:
        """The factored rows of ``prompt_encoder``'s dense embedding of ``masks`` (1 x 1 x 256 x
        256), or None when its mask branch does not end in a 1 x 1 convolution (the caller
        then passes the dense embedding itself)."""
        import torch

        branch = getattr(prompt_encoder, "mask_downscaling", None)
        last = branch[-1] if isinstance(branch, torch.nn.Sequential) and len(branch) else None
        if (not isinstance(last, torch.nn.Conv2d) or tuple(last.kernel_size) != (1, 1)
                or last.bias is None or last.groups != 1 or masks.shape[0] != 1):
            return None
        codes = branch[:-1](masks)[0]  # k x 64 x 64
        return cls(codes.flatten(1).t().float().contiguous(),
                   last.weight.detach()[:, :, 0, 0].t().float(),
                   last.bias.detach().float().reshape(1, -1))

    def full(self) -> Any:
        """The dense embedding's rows, N x C (what upstream adds to the image rows)."""
        import torch

        return torch.addmm(self.bias, self.codes, self.weight)


class FastMaskDecoder:
    """Evaluates an upstream SAM 1 / SAM 2.1 ``MaskDecoder`` (plus its selection rule) quickly.

    Args:
        mask_decoder: ``segment_anything`` or ``sam2`` ``MaskDecoder`` (weights are read, and
            the token-side submodules are called; nothing is modified).
        dense_pe: the prompt encoder's ``get_dense_pe()``, 1 x 256 x 64 x 64 (constant).
        no_mask_embed: the prompt encoder's ``no_mask_embed.weight``, 1 x 256.
        matrix_dtype: dtype of the image-side products and the upscaling branch (default
            fp32, which reproduces upstream); bf16 runs them on the CPU's bf16 units (see the
            module docstring for what stays fp32).
    """

    def __init__(
        self, mask_decoder: Any, dense_pe: Any, no_mask_embed: Any, matrix_dtype: Any = None
    ) -> None:
        import torch

        self.decoder = mask_decoder
        # SAM 2.1's decoder falls back to the best of outputs 1-3 when output 0 is unstable.
        self.stability_fallback = bool(getattr(mask_decoder, "dynamic_multimask_via_stability",
                                               False))
        self.matrix_dtype = matrix_dtype or torch.float32
        self.pe_low = dense_pe.detach()[0].flatten(1).t().contiguous().to(self.matrix_dtype)
        self.no_mask_row = no_mask_embed.detach().reshape(1, -1).float()
        tokens = [mask_decoder.iou_token.weight, mask_decoder.mask_tokens.weight]
        self.token_offset = 0
        if getattr(mask_decoder, "pred_obj_scores", False):
            tokens.insert(0, mask_decoder.obj_score_token.weight)
            self.token_offset = 1
        self.output_tokens = torch.cat(tokens, dim=0).detach()
        self.high_res = bool(getattr(mask_decoder, "use_high_res_features", False))
        conv1, norm, act1, conv2, act2 = mask_decoder.output_upscaling
        self.conv1 = _ConvT.from_module(conv1, matrix_dtype)
        self.conv2 = _ConvT.from_module(conv2, matrix_dtype)
        self.norm, self.act1, self.act2 = norm, act1, act2
        transformer = mask_decoder.transformer
        self.token_to_image = [_HeadWeights.from_module(layer.cross_attn_token_to_image)
                               for layer in transformer.layers]
        self.image_to_token = [_HeadWeights.from_module(layer.cross_attn_image_to_token)
                               for layer in transformer.layers]
        self.final_token_to_image = _HeadWeights.from_module(
            transformer.final_attn_token_to_image)
        # The positional encoding's share of every image-side score, projected once per model
        # (h x d x N each): a click adds ``q . (Wk_h pe_n)`` from these instead of adding the
        # positions to all N x 256 image rows before each product.
        pe = dense_pe.detach()[0].flatten(1).float()  # C x N

        def projected(weights: Any) -> Any:  # h x d x C -> h x d x N
            return torch.matmul(weights, pe).to(self.matrix_dtype).contiguous()

        self.pe_keys = [projected(w.k) for w in self.token_to_image]
        self.pe_queries = [projected(w.q) for w in self.image_to_token]
        self.final_pe_keys = projected(self.final_token_to_image.k)
        self.hypernetworks = _StackedMLPs.from_modules(mask_decoder.output_hypernetworks_mlps)
        self.row_fold = None  # row_folding.ConvFold where the tables apply (fp32, two layers)
        if self.matrix_dtype == torch.float32 and len(transformer.layers) == 2:
            self.row_fold = row_folding.ConvFold.from_decoder(transformer, self.conv1.weight)

    # -- once per image ----------------------------------------------------------------------
    def prepare(self, image_embed: Any, high_res_feats: Any = None, dtype: Any = None) -> dict:
        """Image features in the layouts a click needs (stored in the embedding).

        Args:
            image_embed: 1 x 256 x 64 x 64.
            high_res_feats: SAM 2 only: (1 x 32 x 256 x 256, 1 x 64 x 128 x 128).
            dtype: storage dtype (default: unchanged); bf16 halves the embedding's bytes.

        Returns:
            ``image_rows`` N x 256; the first layer's projections of them (see
            ``_first_layer_projections``); SAM 2 also ``feat_s1`` (4N x 64) and ``feat_s0``
            (16N x 32) in block order, each plus the bias of the transposed convolution it is
            added to.
        """
        dtype = dtype or image_embed.dtype
        rows = image_embed[0].flatten(1).t()
        prepared = {"image_rows": rows.to(dtype).contiguous()}
        prepared.update(self._first_layer_projections(prepared["image_rows"]))
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

    def fold_tables(self, prepared: Mapping[str, Any]) -> dict:
        """Tables with which prompts without a mask input skip most of the second layer's and
        the first upscaling's products (``row_folding``): ``prepared`` plus them makes a dict
        this decoder decodes the same, up to float rounding, and faster. Empty where they do
        not apply (bf16 matrices, features prepared without the first layer's projections).

        Why not in ``prepare``: 10 MiB per image in fp32 is worth it for a run of many prompts
        on one image (segment everything), not for every image in the embedding cache.
        """
        if self.row_fold is None or _FirstLayer.read(prepared) is None:
            return {}
        return row_folding.image_tables(prepared, self.decoder.transformer,
                                        self.token_to_image[1], self.image_to_token[1],
                                        self.row_fold)

    def _first_layer_projections(self, stored_rows: Any) -> dict:
        """The first layer's image-side projections when no mask is given, in the storage dtype.

        ``first_t2i_keys`` h x d x N: ``Wk_h (x_n + pe_n)`` (the key bias is left out: it shifts
        each softmax row by a constant); ``first_t2i_values`` h x N x d: ``Wv_h x_n`` (the value
        bias is added after the weighting, whose rows sum to 1); ``first_i2t_queries``
        h x d x N: ``Wq_h (x_n + pe_n) + bq_h``. ``x_n`` is a stored row plus ``no_mask_embed``,
        exactly what a click without a mask input starts from.
        """
        import torch

        src = stored_rows.float() + self.no_mask_row
        src_pe = src + self.pe_low.float()
        t2i, i2t = self.token_to_image[0], self.image_to_token[0]
        dtype = stored_rows.dtype
        keys = torch.matmul(t2i.k, src_pe.t())  # h x d x N
        values = torch.matmul(src, t2i.v_t)  # h x N x d
        queries = torch.matmul(i2t.q, src_pe.t()).add_(i2t.q_bias)
        return {"first_t2i_keys": keys.to(dtype).contiguous(),
                "first_t2i_values": values.to(dtype).contiguous(),
                "first_i2t_queries": queries.to(dtype).contiguous()}

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

        Only the selected outputs' logits are computed (upstream computes all four, then
        selects): 3 with multimask, else 1 (SAM 2.1: output 0 and its fallback, the best of
        1-3, for the stability check).

        Args:
            prepared: ``prepare``'s output for the image.
            sparse: the prompt encoder's sparse embeddings, 1 x T x 256.
            dense: its dense embeddings 1 x 256 x 64 x 64, or the same as ``MaskRows``
                (faster), or None when there is no mask input (then the constant
                ``no_mask_embed`` is added, as upstream does).
            multimask: three candidates (outputs 1-3) or one (output 0; SAM 2.1 falls back to
                the best of 1-3 when output 0 is unstable, as upstream).
        """
        keys, hyper_in, iou = self._tokens(prepared, sparse, dense)
        return self._select(self._upscale(keys, prepared), hyper_in, iou, multimask)

    def single_or_candidates(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any, unsure_below: float
    ) -> tuple[Any, Any]:
        """``__call__`` with one mask, or, when that mask's score is below ``unsure_below``,
        ``__call__`` with three: what the two calls return, from one decode.

        Why: the page asks for one mask on a refining click and, when the model is unsure of
        it, for three candidates with the same prompts and mask input. Upstream's decoder (and
        ``__call__``) computes every output from the same transformer and upscaling whichever
        are selected, so the second call would repeat the whole decode to select other rows.
        """
        keys, hyper_in, iou = self._tokens(prepared, sparse, dense)
        upscaled = self._upscale(keys, prepared)
        single = self._select(upscaled, hyper_in, iou, False)
        if float(single[1][0, 0]) < unsure_below:
            return self._select(upscaled, hyper_in, iou, True)
        return single

    def decode_unless(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any, multimask: bool,
        skip: Any, floor: float | None = None,
    ) -> tuple[Any, Any] | None:
        """``__call__``, except that nothing is upscaled and None is returned when
        ``skip(iou)`` is True for the predicted IoUs of all four outputs (1 x 4, before
        selection); with ``multimask`` and a ``floor``, a candidate whose predicted IoU is at
        most ``floor`` gets zero logits instead of its own (its score is returned as computed).

        Why: segment everything drops every candidate whose predicted IoU is at most its
        threshold, whatever its mask; the IoUs come from the token side alone, before the two
        upscaling products that are most of a decode. A grid point none of whose candidates
        can pass costs the transformer only, and one whose candidates pass in part makes only
        their logits.
        """
        keys, hyper_in, iou = self._tokens(prepared, sparse, dense)
        if skip(iou):
            return None
        upscaled = self._upscale(keys, prepared)
        if multimask and floor is not None:
            return self._candidates_above(upscaled, hyper_in, iou, floor)
        return self._select(upscaled, hyper_in, iou, multimask)

    def _candidates_above(self, upscaled: Any, hyper_in: Any, iou: Any, floor: float
                          ) -> tuple[Any, Any]:
        """Outputs 1-3 as ``_select`` gives them with multimask, those whose predicted IoU is
        at most ``floor`` as zeros."""
        import torch

        scores = iou[:, 1:]
        passing = (scores[0] > floor).nonzero()[:, 0].tolist()  # as the IoU filter compares
        if len(passing) == scores.shape[1]:
            return self._select(upscaled, hyper_in, iou, True)
        logits = torch.zeros((1, scores.shape[1], 4 * GRID, 4 * GRID))
        if passing:
            rows = hyper_in[[1 + i for i in passing]]
            logits[:, passing] = _image_order(_logits(upscaled, rows))
        return logits, scores

    def _select(self, upscaled: Any, hyper_in: Any, iou: Any, multimask: bool
                ) -> tuple[Any, Any]:
        """The selected outputs' logits (image order) and scores, as upstream selects."""
        import torch

        if multimask:
            return _image_order(_logits(upscaled, hyper_in[1:])), iou[:, 1:]
        if self.stability_fallback:
            # Output 0 and its fallback in one product (it is bound by reading ``upscaled``).
            fallback = 1 + int(torch.argmax(iou[0, 1:]))
            pair = _logits(upscaled, hyper_in[[0, fallback]])
            stability = self.decoder._get_stability_scores(pair[:1])  # order-free: block order ok
            chosen = 0 if stability >= self.decoder.dynamic_multimask_stability_thresh else 1
            index = (0, fallback)[chosen]
            return _image_order(pair[chosen: chosen + 1]), iou[:, index: index + 1]
        return _image_order(_logits(upscaled, hyper_in[:1])), iou[:, :1]

    def predict_masks(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any
    ) -> tuple[Any, Any]:
        """All mask outputs (1 x 4 x 256 x 256) and their scores (1 x 4), before selection."""
        keys, hyper_in, iou = self._tokens(prepared, sparse, dense)
        return _image_order(_logits(self._upscale(keys, prepared), hyper_in)), iou

    def _tokens(
        self, prepared: Mapping[str, Any], sparse: Any, dense: Any
    ) -> tuple[Any, Any, Any]:
        """The transformer and token heads: (image rows after it, N x 256 in the matrix dtype;
        hypernetwork rows 4 x C2; scores 1 x 4). Nothing is upscaled yet."""
        import torch

        if sparse.shape[0] != 1:
            raise ValueError("FastMaskDecoder decodes one object per call (batch size 1)")
        tokens = torch.cat([self.output_tokens[None], sparse], dim=1)
        stored = prepared["image_rows"]
        mask = dense if isinstance(dense, MaskRows) else None
        first = None if dense is not None and mask is None else _FirstLayer.read(prepared)
        if first is not None:
            # The first layer then reads the rows only as the residual of its image-to-token
            # attention, which adds ``no_mask_embed`` (or the mask's rows) with its values (no
            # pass over N x C of its own).
            src = stored.float()
            pending = self.no_mask_row if mask is None else _MaskTerm.of(mask, self.no_mask_row)
        else:
            if dense is None:
                added = self.no_mask_row
            else:
                added = mask.full() if mask is not None else dense[0].flatten(1).t()
            # One fp32 copy of the stored rows, then in place (never into the stored embedding).
            src = stored.float().add_(added) if stored.dtype != torch.float32 else stored + added
            pending = None
        fold = None
        if first is not None and mask is None and self.row_fold is not None:
            fold = row_folding.FoldTables.read(prepared)
        queries, keys = self._transformer(src, tokens, first, pending, fold)
        decoder = self.decoder
        mask_tokens = queries[0, 1: 1 + decoder.num_mask_tokens]  # M x C
        if self.hypernetworks is not None:
            hyper_in = self.hypernetworks(mask_tokens)  # M x C2
        else:
            hyper_in = torch.stack(
                [mlp(mask_tokens[i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)]
            )
        iou = decoder.iou_prediction_head(queries[:, 0])
        return keys, hyper_in, iou

    def _upscale(self, rows: Any, prepared: Mapping[str, Any]) -> Any:
        """N x 256 -> 16N x C2 through both transposed convolutions, in block order."""
        from torch.nn import functional as F

        if isinstance(rows, row_folding.FoldedRows):
            x = rows.first_upscaling(self.conv1, prepared.get("feat_s1"))  # 4N x C1
        else:
            x = self.conv1(rows, prepared.get("feat_s1"))  # 4N x C1
        weight, bias = self.norm.weight.to(x.dtype), self.norm.bias.to(x.dtype)
        x = self.act1(F.layer_norm(x, x.shape[-1:], weight, bias, self.norm.eps))
        x = self.conv2(x, prepared.get("feat_s0"))  # 16N x C2
        return self.act2(x)

    def _transformer(self, keys: Any, tokens: Any, first: _FirstLayer | None,
                     pending: Any = None, fold: row_folding.FoldTables | None = None
                     ) -> tuple[Any, Any]:
        """``TwoWayTransformer.forward`` on rows: keys N x C -> (queries 1 x (1 + M) x C, keys
        N x C).

        ``first``: the first layer's cached projections of ``keys`` (made without a mask
        input; a mask's rows come as ``pending``), or None.
        ``pending``: a row (1 x C) still to be added to every row of ``keys``, or a mask's
        rows (``_MaskTerm``), which are then not modified (they may be the stored embedding);
        only with ``first``.
        ``fold``: ``fold_tables``' output (with ``first``), or None.
        The queries returned are the IoU token's and the M mask tokens', the only ones read
        after the transformer. The keys are in the matrix dtype: their only use left is the
        first upscaling product; with ``fold`` they come back as ``row_folding.FoldedRows``.
        """
        transformer = self.decoder.transformer
        queries = tokens
        mixings: list[row_folding.Mixing] = []
        for index, layer in enumerate(transformer.layers):
            cached = first if index == 0 else None
            queries, keys, mixing = self._block(
                index, layer, queries, keys, tokens, cached, pending if index == 0 else None,
                row_folding.SecondLayerInput(fold, mixings[0], transformer.layers[0].norm4)
                if fold is not None and index == 1 else None)
            mixings.append(mixing)
        s = self.token_offset
        read = slice(s, s + 1 + self.decoder.num_mask_tokens)  # the IoU and mask tokens
        queries = queries[:, read]
        q = queries + tokens[:, read]
        keys_low = keys.to(self.matrix_dtype)
        attn = _token_to_image(self.final_token_to_image, q, keys_low, self.final_pe_keys)
        if fold is not None:
            keys_low = row_folding.FoldedRows(self.row_fold, fold.conv_rows, *mixings)
        return transformer.norm_final_attn(queries + attn), keys_low

    def _block(
        self, index: int, layer: Any, queries: Any, keys: Any, query_pe: Any,
        cached: _FirstLayer | None = None, pending: Any = None,
        folded: row_folding.SecondLayerInput | None = None,
    ) -> tuple[Any, Any, row_folding.Mixing]:
        """``TwoWayAttentionBlock.forward`` with the two image-side attentions folded, or run on
        ``cached`` projections of ``keys`` when given (``pending``: see ``_transformer``), or,
        for the second layer, on ``folded`` (the run's tables and the first layer's mixing).
        Also returns this layer's ``Mixing``."""
        import torch

        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        t2i, i2t = self.token_to_image[index], self.image_to_token[index]
        q = queries + query_pe
        if folded is not None:
            attn = row_folding.token_to_image(t2i, q, folded.tables, self.pe_keys[index],
                                              folded.previous, folded.norm)
        elif cached is None:
            keys_low = keys.to(self.matrix_dtype)
            attn = _token_to_image(t2i, q, keys_low, self.pe_keys[index])
        else:
            attn = _token_to_image_projected(t2i, q, cached.t2i_keys, cached.t2i_values,
                                             pending if isinstance(pending, _MaskTerm) else None)
        queries = layer.norm2(queries + attn)
        queries = layer.norm3(queries + layer.mlp(queries))
        q = queries + query_pe
        if folded is not None:
            scores = row_folding.image_to_token_scores(i2t, folded.tables, q,
                                                       self.pe_queries[index], folded.previous,
                                                       folded.norm)
        elif cached is None:
            scores = _image_to_token_scores(i2t, keys_low, q, self.pe_queries[index])
        else:
            scores = _image_to_token_scores_projected(
                i2t, cached.i2t_queries, q, pending if isinstance(pending, _MaskTerm) else None)
        keys, probs, folded_values = _image_to_token(i2t, scores, queries, keys, pending)
        norm = layer.norm4
        keys, mean, rstd = torch.native_layer_norm(keys, norm.normalized_shape, norm.weight,
                                                   norm.bias, norm.eps)
        return queries, keys, row_folding.Mixing(probs, folded_values, mean, rstd)


def _logits(upscaled: Any, hyper_in: Any) -> Any:
    """Mask logits M x 16N (fp32) in block order: one product per selected output."""
    import torch

    return torch.mm(hyper_in.to(upscaled.dtype), upscaled.t()).float()


def _image_order(logits: Any) -> Any:
    """M x 16N block-order logits -> 1 x M x 256 x 256 in image order.

    One gather with a precomputed index (``_image_order_index``): the same copy as permuting
    the seven-dimensional block view, whose innermost runs are two floats long, but about 9x
    faster on a CPU (0.17 against 1.5 ms for three outputs on one AVX2 core).
    """
    index = _image_order_index(str(logits.device))
    return logits.index_select(1, index).view(1, -1, 4 * GRID, 4 * GRID)


@functools.lru_cache(maxsize=4)  # one per device in use
def _image_order_index(device: str) -> Any:
    """For each image-order logit (row-major 256 x 256), its position in block order
    ``(i, j, ki, kj, ki2, kj2)``, with y = 4i + 2ki + ki2 and x = 4j + 2kj + kj2."""
    import torch

    block = torch.arange(16 * GRID * GRID, device=device)
    return block.view(GRID, GRID, 2, 2, 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(-1)


@dataclass(frozen=True)
class _HeadWeights:
    """An upstream ``Attention``'s projections split per head (h), for batched products.

    Read once, so a click pays no per-call reshaping: ``q``/``k`` h x d x C (W_h), ``v_t``
    h x C x d (W_h^T), ``out`` h x d x C (the output projection's columns of head h,
    transposed), ``q_bias`` h x d x 1.
    """

    module: Any
    heads: int
    head_dim: int
    q: Any
    q_bias: Any
    k: Any
    v_t: Any
    v_bias: Any
    out: Any

    @classmethod
    def from_module(cls, attention: Any) -> _HeadWeights:
        heads = attention.num_heads
        d = attention.internal_dim // heads
        c = attention.q_proj.in_features

        def per_head(weight: Any) -> Any:  # (h*d) x C -> h x d x C
            return weight.detach().reshape(heads, d, -1).contiguous()

        out = attention.out_proj.weight.detach().reshape(c, heads, d).permute(1, 2, 0)
        return cls(
            module=attention, heads=heads, head_dim=d,
            q=per_head(attention.q_proj.weight),
            q_bias=attention.q_proj.bias.detach().reshape(heads, d, 1),
            k=per_head(attention.k_proj.weight),
            v_t=per_head(attention.v_proj.weight).transpose(1, 2).contiguous(),
            v_bias=attention.v_proj.bias.detach().reshape(heads, d),
            out=out.contiguous(),
        )

    def per_head(self, projection: Any, x: Any) -> Any:
        """``projection(x)`` for tokens ``x`` (1 x T x C) split per head: h x T x d."""
        return projection(x).view(x.shape[1], self.heads, self.head_dim).transpose(0, 1)

    def output(self, mixed: Any) -> Any:
        """Heads' weighted values (h x T x d, value bias not yet added; the attention weights
        sum to 1, so it is added once here) -> the output projection, 1 x T x C."""
        out = mixed.transpose(0, 1) + self.v_bias  # T x h x d
        return self.module.out_proj(out.reshape(1, mixed.shape[1], -1))


def _token_to_image(w: _HeadWeights, q_in: Any, keys: Any, pe_keys: Any) -> Any:
    """Tokens (1 x T x C) attend to image rows: upstream ``Attention(q, k=keys + pe, v=keys)``.

    ``keys`` is N x C and ``pe_keys`` (``Wk_h pe_n``) h x d x N, both in the matrix dtype; the
    products' other operands are rounded to it, and everything else (softmax, projections) is
    fp32.
    """
    import torch

    _, t, c = q_in.shape
    heads, d = w.heads, w.head_dim
    q = w.per_head(w.module.q_proj, q_in) * (1.0 / math.sqrt(d))
    # scores[h, t, n] = q[h, t] . (Wk_h (x_n + pe_n) + bk_h); the bias term is constant along
    # n, and the positions' term comes from their projection (``pe_keys``).
    qk = torch.bmm(q, w.k).reshape(heads * t, c)
    low = keys.dtype
    scores = torch.mm(qk.to(low), keys.t()).float()
    scores += torch.bmm(q.to(low), pe_keys).float().view(heads * t, -1)
    probs = torch.softmax(scores, dim=-1)  # hT x N
    # Rows of probs sum to 1, so the value bias passes through unchanged.
    mixed = torch.mm(probs.to(low), keys).float().view(heads, t, c)
    return w.output(torch.bmm(mixed, w.v_t))


def _token_to_image_projected(w: _HeadWeights, q_in: Any, keys: Any, values: Any,
                              mask: _MaskTerm | None = None) -> Any:
    """``_token_to_image`` on image rows already projected: ``keys`` h x d x N (no key bias),
    ``values`` h x N x d (no value bias), as ``prepare`` stores them for the first layer.

    With ``mask``, the rows attended to are those plus ``mask.delta`` (``codes @ weight +
    shift``): the scores gain ``(q Wk_h weight^T) . codes_n`` (the shift's share is the same
    for every n, so softmax drops it) and the weighted values gain ``(P codes) (weight Wv_h^T)``
    plus ``shift Wv_h^T`` (each row of P sums to 1)."""
    import torch

    q = w.per_head(w.module.q_proj, q_in) * (1.0 / math.sqrt(w.head_dim))
    scores = torch.bmm(q.to(keys.dtype), keys).float()  # h x T x N
    if mask is not None:
        codes = mask.rows.codes  # N x k
        q_codes = torch.matmul(torch.bmm(q, w.k), mask.rows.weight.t())  # h x T x k
        scores += torch.matmul(q_codes, codes.t())
    probs = torch.softmax(scores, dim=-1)
    mixed = torch.bmm(probs.to(values.dtype), values).float()  # h x T x d
    if mask is not None:
        code_values = torch.matmul(mask.rows.weight, w.v_t)  # h x k x d
        mixed += torch.bmm(torch.matmul(probs, codes), code_values)
        mixed += torch.matmul(mask.shift, w.v_t)  # h x 1 x d
    return w.output(mixed)


@dataclass(frozen=True)
class _MaskTerm:
    """A mask input's rows as the first layer adds them to rows whose projections were made
    with ``no_mask_embed``: ``delta = rows.codes @ rows.weight + shift`` with
    ``shift = rows.bias - no_mask_embed``."""

    rows: MaskRows
    shift: Any  # 1 x C

    @classmethod
    def of(cls, rows: MaskRows, no_mask_row: Any) -> _MaskTerm:
        return cls(rows, rows.bias - no_mask_row)


@dataclass(frozen=True)
class _FirstLayer:
    """The first layer's projections stored by ``prepare`` (see ``_first_layer_projections``)."""

    t2i_keys: Any
    t2i_values: Any
    i2t_queries: Any

    @classmethod
    def read(cls, prepared: Mapping[str, Any]) -> _FirstLayer | None:
        """None for features prepared without them (an embedding kept from an older version)."""
        try:
            return cls(prepared["first_t2i_keys"], prepared["first_t2i_values"],
                       prepared["first_i2t_queries"])
        except KeyError:
            return None


def _image_to_token_scores(w: _HeadWeights, keys: Any, q_tokens: Any, pe_queries: Any) -> Any:
    """Scores of image rows against tokens, h x T x N (fp32):
    ``(Wq_h (x_n + pe_n) + bq_h) . k[h, t]``.

    ``keys`` (N x C, matrix dtype) is projected by folding the query projection into the
    token keys (the score product runs in the matrix dtype); the positions' term comes from
    ``pe_queries`` (``Wq_h pe_n``, h x d x N).
    """
    import torch

    _, t, c = q_tokens.shape
    heads, d = w.heads, w.head_dim
    k = w.per_head(w.module.k_proj, q_tokens) * (1.0 / math.sqrt(d))
    low = keys.dtype
    folded_q = torch.bmm(k, w.q).reshape(heads * t, c).to(low)
    folded_b = torch.bmm(k, w.q_bias).reshape(heads * t, 1)
    scores = torch.mm(folded_q, keys.t()).float().add_(folded_b)
    scores += torch.bmm(k.to(low), pe_queries).float().view(heads * t, -1)
    return scores.view(heads, t, -1)


def _image_to_token_scores_projected(w: _HeadWeights, queries: Any, q_tokens: Any,
                                     mask: _MaskTerm | None = None) -> Any:
    """``_image_to_token_scores`` from the image rows' queries already projected (h x d x N,
    bias included), as ``prepare`` stores them for the first layer.

    With ``mask``, of rows plus ``mask.delta``: the scores gain ``(k_t Wq_h weight^T) .
    codes_n + k_t . Wq_h shift`` (softmax here runs over the tokens, so the shift's share
    stays)."""
    import torch

    k = w.per_head(w.module.k_proj, q_tokens) * (1.0 / math.sqrt(w.head_dim))
    scores = torch.bmm(k.to(queries.dtype), queries).float()
    if mask is not None:
        k_q = torch.bmm(k, w.q)  # h x T x C
        scores += torch.matmul(torch.matmul(k_q, mask.rows.weight.t()), mask.rows.codes.t())
        scores += torch.matmul(k_q, mask.shift.t())  # h x T x 1
    return scores


def _image_to_token(w: _HeadWeights, scores: Any, tokens: Any, keys: Any,
                    pending: Any = None) -> tuple[Any, Any, Any]:
    """``keys + Attention(q=keys_pe, k=q_tokens, v=tokens)`` (image rows attend to tokens),
    given the attention's ``scores`` (h x T x N, fp32).

    ``keys`` (N x C, fp32) is the residual, updated in place by an fp32 product (its inner
    size is only heads x T, so a lower precision would not make it faster). With ``pending``
    (a row, 1 x C, or a mask's rows, ``_MaskTerm``, whose bias and code columns join the
    product), the result is ``keys + pending + Attention(...)`` in a new tensor and ``keys``
    is left as it is.

    Returns (the rows, N x C; the attention's weights, heads*T x N; the folded value rows they
    mix, heads*T x C, ``pending`` included): the rows are ``keys + weights^T @ folded`` (plus
    the mask's ``codes @ weight`` with a ``_MaskTerm``; ``row_folding`` never sees those).
    """
    import torch

    _, t, c = tokens.shape
    heads = w.heads
    v = w.per_head(w.module.v_proj, tokens)
    probs = torch.softmax(scores, dim=1).view(heads * t, -1)
    # out_n = sum_h P_h[n] (v_h Wo_h^T) + bo; each head's probabilities sum to 1 over its
    # tokens, so bo / heads on every folded value row adds bo exactly once.
    folded_v = torch.bmm(v, w.out).reshape(heads * t, c) + w.module.out_proj.bias / heads
    if isinstance(pending, _MaskTerm):  # the mask's rows: its code columns join the product
        folded_v = folded_v + pending.rows.bias / heads
        mixing = torch.cat([probs.t(), pending.rows.codes], dim=1)
        return (torch.addmm(keys, mixing, torch.cat([folded_v, pending.rows.weight])),
                probs, folded_v)
    if pending is not None:  # the same reasoning adds the pending row exactly once
        folded_v = folded_v + pending / heads
        return torch.addmm(keys, probs.t(), folded_v), probs, folded_v
    # In place: ``keys`` is the caller's own temporary.
    return keys.addmm_(probs.t(), folded_v), probs, folded_v
