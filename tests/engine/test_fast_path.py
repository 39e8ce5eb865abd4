"""The fast path's pieces compute what upstream computes, and the bf16 backends keep the contract.

Component tests run in fp32 against the upstream modules on the same weights (small
random-weight models), so any reordering mistake shows up as a large difference; backend tests
check the public contract of ``precision="bf16"``. Fidelity of bf16 against fp32 is
``test_fidelity.py``'s job.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sam_backends import Prompts, SamBackendError, create_backend
from sam_backends.speed.fast_decoder import FastMaskDecoder, MaskRows, _StackedMLPs
from sam_backends.speed.fast_encoder import RelPosSdpaAttention
from sam_backends.speed.fast_upscale import sam1_masks, sam2_masks
from sam_backends.testing.random_models import (
    build_random_model,
    small_sam1_spec,
    small_sam2_spec,
    synthetic_image,
)

PROMPT_POINTS = {
    "one point": (torch.tensor([[[500.0, 300.0]]]), torch.tensor([[1]])),
    "points and box corners": (
        torch.tensor([[[100.0, 120.0], [800.0, 700.0], [420.0, 380.0], [600.0, 200.0]]]),
        torch.tensor([[2, 3, 1, 0]]),
    ),
}


@pytest.fixture(scope="module", params=["sam1", "sam2"])
def decoder_parts(request):
    """(family, prompt encoder, mask decoder, image_embed, high_res_feats or None)."""
    torch.manual_seed(0)
    if request.param == "sam1":
        model = build_random_model(small_sam1_spec())
        parts = (model.prompt_encoder, model.mask_decoder, None)
    else:
        model = build_random_model(small_sam2_spec())
        high_res = (torch.randn(1, 32, 256, 256), torch.randn(1, 64, 128, 128))
        parts = (model.sam_prompt_encoder, model.sam_mask_decoder, high_res)
    return (request.param, *parts[:2], torch.randn(1, 256, 64, 64), parts[2])


def _upstream_masks(family, decoder, embed, pe, sparse, dense, high_res):
    if family == "sam1":
        return decoder.predict_masks(embed, pe, sparse, dense)
    masks, iou, _, _ = decoder.predict_masks(embed, pe, sparse, dense, repeat_image=False,
                                             high_res_features=list(high_res))
    return masks, iou


@pytest.mark.parametrize("with_mask", [False, True], ids=["no mask", "mask input"])
@pytest.mark.parametrize("prompt", list(PROMPT_POINTS))
def test_fast_decoder_matches_upstream_in_fp32(decoder_parts, prompt, with_mask):
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    mask_input = torch.randn(1, 1, 256, 256) * 4 if with_mask else None
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS[prompt], boxes=None, masks=mask_input)
        pe = prompt_encoder.get_dense_pe()
        ref_masks, ref_iou = _upstream_masks(family, decoder, embed, pe, sparse, dense, high_res)
        fast = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight)
        masks, iou = fast.predict_masks(fast.prepare(embed, high_res), sparse,
                                        dense if with_mask else None)
    assert masks.shape == ref_masks.shape == (1, 4, 256, 256)
    scale = ref_masks.abs().max().item()
    assert (masks - ref_masks).abs().max().item() <= 1e-5 * max(scale, 1.0)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)


def test_first_layer_projections_are_used_without_a_mask_and_optional(decoder_parts):
    """A click without a mask input reads the projections ``prepare`` stored (spoiling them
    changes its logits; a mask input ignores them), and features prepared without them (an
    embedding kept on disk by an older version) decode to the same logits the general way."""
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    names = ("first_t2i_keys", "first_t2i_values", "first_i2t_queries")
    with torch.inference_mode():
        sparse, _ = prompt_encoder(points=PROMPT_POINTS["one point"], boxes=None, masks=None)
        _, dense = prompt_encoder(points=PROMPT_POINTS["one point"], boxes=None,
                                  masks=torch.randn(1, 1, 256, 256))
        fast = FastMaskDecoder(decoder, prompt_encoder.get_dense_pe(),
                               prompt_encoder.no_mask_embed.weight)
        prepared = fast.prepare(embed, high_res)
        assert prepared["first_t2i_keys"].shape == prepared["first_i2t_queries"].shape
        assert prepared["first_t2i_values"].shape[1] == 64 * 64
        with_cache, with_cache_iou = fast.predict_masks(prepared, sparse, None)
        older = {k: v for k, v in prepared.items() if k not in names}
        general, general_iou = fast.predict_masks(older, sparse, None)
        torch.testing.assert_close(with_cache, general, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(with_cache_iou, general_iou, atol=1e-5, rtol=1e-5)
        masked = fast.predict_masks(prepared, sparse, dense)[0]
        for name in names:
            spoiled = dict(prepared, **{name: prepared[name] * 1.5})
            assert not torch.allclose(fast.predict_masks(spoiled, sparse, None)[0], with_cache,
                                      atol=1e-3), name
            assert torch.equal(fast.predict_masks(spoiled, sparse, dense)[0], masked), name


@pytest.mark.parametrize("prompt", list(PROMPT_POINTS))
def test_a_factored_mask_input_decodes_like_upstream_on_the_cached_projections(decoder_parts,
                                                                             prompt):
    """A mask input given as ``MaskRows`` (a refining click) gives upstream's logits and
    scores, uses the first layer's stored projections (spoiling them changes the logits), and
    equals the dense embedding decoded the general way; its rows are the dense embedding's."""
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    mask_input = torch.randn(1, 1, 256, 256) * 4
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS[prompt], boxes=None, masks=mask_input)
        pe = prompt_encoder.get_dense_pe()
        ref_masks, ref_iou = _upstream_masks(family, decoder, embed, pe, sparse, dense, high_res)
        rows = MaskRows.of(prompt_encoder, mask_input)
        assert rows is not None and rows.codes.shape == (64 * 64, 16)
        torch.testing.assert_close(rows.full(), dense[0].flatten(1).t(), atol=1e-5, rtol=1e-5)
        fast = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight)
        prepared = fast.prepare(embed, high_res)
        masks, iou = fast.predict_masks(prepared, sparse, rows)
        general, general_iou = fast.predict_masks(prepared, sparse, dense)
        spoiled = dict(prepared, first_t2i_keys=prepared["first_t2i_keys"] * 1.5)
        spoiled_masks = fast.predict_masks(spoiled, sparse, rows)[0]
    scale = max(ref_masks.abs().max().item(), 1.0)
    assert (masks - ref_masks).abs().max().item() <= 1e-5 * scale
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)
    assert (masks - general).abs().max().item() <= 1e-5 * scale
    torch.testing.assert_close(iou, general_iou, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(spoiled_masks, masks, atol=1e-3)


def test_mask_rows_need_a_final_one_by_one_convolution(decoder_parts):
    """A mask branch of another shape gives no factored rows (the backend then passes the
    dense embedding), and the fast backends' prompt step factors a mask input."""
    from sam_backends.speed.fast_path import prompt_embeddings

    _, prompt_encoder, _, _, _ = decoder_parts
    mask_input = torch.randn(1, 1, 256, 256)
    with torch.inference_mode():
        sparse, factored = prompt_embeddings(prompt_encoder, PROMPT_POINTS["one point"], None,
                                             mask_input)
        assert isinstance(factored, MaskRows)
        assert prompt_embeddings(prompt_encoder, PROMPT_POINTS["one point"], None, None)[1] is None
        branch = prompt_encoder.mask_downscaling
        original = branch[-1]
        try:
            branch[-1] = torch.nn.Sequential(original)  # no longer a bare 1 x 1 convolution
            assert MaskRows.of(prompt_encoder, mask_input) is None
            _, dense = prompt_embeddings(prompt_encoder, PROMPT_POINTS["one point"], None,
                                         mask_input)
        finally:
            branch[-1] = original
    assert dense.shape == (1, 256, 64, 64)
    torch.testing.assert_close(dense[0].flatten(1).t(), factored.full(), atol=1e-5, rtol=1e-5)
    assert sparse.shape[0] == 1


@pytest.mark.parametrize("prompt", list(PROMPT_POINTS))
def test_fold_tables_decode_like_upstream_and_are_used(decoder_parts, prompt):
    """With ``fold_tables`` (segment everything's per-run tables) a prompt without a mask
    input decodes to upstream's logits as the plain path does; every table is read (spoiling
    one changes the logits); a mask input ignores them; bf16 matrices get none."""
    from sam_backends.automatic.memory import RUN_TABLE_BYTES
    from sam_backends.speed.row_folding import TABLE_NAMES

    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS[prompt], boxes=None, masks=None)
        _, mask_dense = prompt_encoder(points=PROMPT_POINTS[prompt], boxes=None,
                                       masks=torch.randn(1, 1, 256, 256) * 4)
        pe = prompt_encoder.get_dense_pe()
        ref_masks, ref_iou = _upstream_masks(family, decoder, embed, pe, sparse, dense, high_res)
        fast = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight)
        prepared = fast.prepare(embed, high_res)
        tables = fast.fold_tables(prepared)
        assert set(tables) == set(TABLE_NAMES)
        # what a segment-everything run's memory bound counts for them (full-size decoder)
        assert sum(t.numel() * t.element_size() for t in tables.values()) == RUN_TABLE_BYTES
        folded = {**prepared, **tables}
        masks, iou = fast.predict_masks(folded, sparse, None)
        scale = max(ref_masks.abs().max().item(), 1.0)
        assert (masks - ref_masks).abs().max().item() <= 1e-5 * scale
        torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)
        for name in TABLE_NAMES:
            spoiled = dict(folded, **{name: folded[name] * 1.5})
            assert not torch.allclose(fast.predict_masks(spoiled, sparse, None)[0], masks,
                                      atol=1e-3), name
        assert torch.equal(fast.predict_masks(folded, sparse, mask_dense)[0],
                           fast.predict_masks(prepared, sparse, mask_dense)[0])
        low = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight,
                              matrix_dtype=torch.bfloat16)
        assert low.fold_tables(low.prepare(embed, high_res)) == {}


@pytest.mark.parametrize("multimask", [True, False])
def test_fast_decoder_selects_outputs_like_upstream(decoder_parts, multimask):
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS["one point"], boxes=None, masks=None)
        pe = prompt_encoder.get_dense_pe()
        kwargs = {"image_embeddings": embed, "image_pe": pe, "sparse_prompt_embeddings": sparse,
                  "dense_prompt_embeddings": dense, "multimask_output": multimask}
        if family == "sam2":
            ref_masks, ref_iou, _, _ = decoder(**kwargs, repeat_image=False,
                                               high_res_features=list(high_res))
        else:
            ref_masks, ref_iou = decoder(**kwargs)
        fast = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight)
        masks, iou = fast(fast.prepare(embed, high_res), sparse, None, multimask)
    assert masks.shape == ref_masks.shape == (1, 3 if multimask else 1, 256, 256)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)
    assert torch.equal(masks > 0, ref_masks > 0) or (masks - ref_masks).abs().max() < 1e-4


@pytest.mark.parametrize("threshold", [0.0, 1.01], ids=["stable", "unstable"])
def test_fast_decoder_follows_sam2_stability_fallback(decoder_parts, threshold, monkeypatch):
    """Single-mask SAM 2.1 output: token 0 when stable, else the best of 1-3, as upstream."""
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    if family != "sam2":
        pytest.skip("the stability fallback is SAM 2.1's")
    monkeypatch.setattr(decoder, "dynamic_multimask_stability_thresh", threshold)
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS["one point"], boxes=None, masks=None)
        pe = prompt_encoder.get_dense_pe()
        ref_masks, ref_iou, _, _ = decoder(embed, pe, sparse, dense, multimask_output=False,
                                           repeat_image=False, high_res_features=list(high_res))
        all_masks, all_iou = decoder.predict_masks(embed, pe, sparse, dense, repeat_image=False,
                                                   high_res_features=list(high_res))[:2]
        fast = FastMaskDecoder(decoder, pe, prompt_encoder.no_mask_embed.weight)
        masks, iou = fast(fast.prepare(embed, high_res), sparse, None, False)
    chosen = 0 if threshold == 0.0 else 1 + int(torch.argmax(all_iou[0, 1:]))
    torch.testing.assert_close(iou, all_iou[:, chosen: chosen + 1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)
    scale = max(ref_masks.abs().max().item(), 1.0)
    assert masks.shape == ref_masks.shape == (1, 1, 256, 256)
    assert (masks - ref_masks).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("with_mask", [False, True], ids=["no mask", "mask input"])
def test_single_or_candidates_is_either_selection_from_one_decode(decoder_parts, with_mask,
                                                                   monkeypatch):
    """What ``__call__`` gives with one mask when its score reaches the bar, with three when it
    is below, bit for bit, and the transformer ran once per call (not twice when unsure)."""
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    mask_input = torch.randn(1, 1, 256, 256) * 4 if with_mask else None
    with torch.inference_mode():
        sparse, dense = prompt_encoder(points=PROMPT_POINTS["points and box corners"],
                                       boxes=None, masks=mask_input)
        dense = dense if with_mask else None
        fast = FastMaskDecoder(decoder, prompt_encoder.get_dense_pe(),
                               prompt_encoder.no_mask_embed.weight)
        prepared = fast.prepare(embed, high_res)
        single = fast(prepared, sparse, dense, False)
        three = fast(prepared, sparse, dense, True)
        runs = []
        tokens = fast._tokens
        monkeypatch.setattr(fast, "_tokens", lambda *a: runs.append(1) or tokens(*a))
        score = float(single[1][0, 0])
        sure = fast.single_or_candidates(prepared, sparse, dense, score)  # not below: one
        unsure = fast.single_or_candidates(prepared, sparse, dense, score + 1e-3)
    assert len(runs) == 2
    assert sure[0].shape == (1, 1, 256, 256) and unsure[0].shape == (1, 3, 256, 256)
    assert torch.equal(sure[0], single[0]) and torch.equal(sure[1], single[1])
    assert torch.equal(unsure[0], three[0]) and torch.equal(unsure[1], three[1])


def test_bf16_matrix_products_stay_close_to_fp32(decoder_parts):
    """The bf16 products round their operands only: logits move by a small fraction."""
    family, prompt_encoder, decoder, embed, high_res = decoder_parts
    with torch.inference_mode():
        sparse, _ = prompt_encoder(points=PROMPT_POINTS["points and box corners"], boxes=None,
                                   masks=None)
        pe, no_mask = prompt_encoder.get_dense_pe(), prompt_encoder.no_mask_embed.weight
        exact = FastMaskDecoder(decoder, pe, no_mask)
        fast = FastMaskDecoder(decoder, pe, no_mask, matrix_dtype=torch.bfloat16)
        assert fast.conv1.weight.dtype == fast.conv2.weight.dtype == torch.bfloat16
        ref, ref_iou = exact.predict_masks(exact.prepare(embed, high_res), sparse, None)
        got, iou = fast.predict_masks(fast.prepare(embed, high_res), sparse, None)
    assert got.dtype == iou.dtype == torch.float32
    error = (got - ref).abs()
    assert 0 < error.max().item() <= 0.05 * ref.abs().max().item()  # bf16 did run, and stayed near
    agree = ((got > 0) == (ref > 0)).float().mean().item()
    assert agree >= 0.99
    torch.testing.assert_close(iou, ref_iou, atol=0.02, rtol=0.02)


def test_stacked_hypernetworks_equal_the_upstream_mlps(decoder_parts):
    from segment_anything.modeling.mask_decoder import MLP

    _, _, decoder, _, _ = decoder_parts
    mlps = decoder.output_hypernetworks_mlps
    stacked = _StackedMLPs.from_modules(mlps)
    rows = torch.randn(len(mlps), 256)
    with torch.inference_mode():
        expected = torch.stack([mlp(rows[i]) for i, mlp in enumerate(mlps)])
        torch.testing.assert_close(stacked(rows), expected, atol=1e-5, rtol=1e-5)
    # A sigmoid output (or differing shapes) is not stacked: the caller runs them one by one.
    assert _StackedMLPs.from_modules([MLP(256, 256, 32, 3, sigmoid_output=True)] * 2) is None
    assert _StackedMLPs.from_modules([MLP(256, 256, 32, 3), MLP(256, 128, 32, 3)]) is None


def test_prepare_and_restore_are_inverse(decoder_parts):
    _, prompt_encoder, decoder, embed, high_res = decoder_parts
    fast = FastMaskDecoder(decoder, prompt_encoder.get_dense_pe(),
                           prompt_encoder.no_mask_embed.weight)
    prepared = fast.prepare(embed, high_res)
    restored = fast.restore(prepared)
    assert torch.equal(restored["image_embed"], embed)
    if high_res is not None:  # the folded conv bias is subtracted again: rounding only
        for got, expected in zip(restored["high_res_feats"], high_res):
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    compact = fast.prepare(embed, high_res, dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in compact.values())
    assert sum(t.nbytes for t in compact.values()) * 2 == sum(t.nbytes for t in prepared.values())


@pytest.mark.parametrize("size, use_rel_pos", [(14, True), (64, True), (14, False)])
def test_fused_attention_matches_upstream(size, use_rel_pos):
    from segment_anything.modeling.image_encoder import Attention

    torch.manual_seed(size)
    attention = Attention(96, num_heads=3, use_rel_pos=use_rel_pos, input_size=(size, size))
    if use_rel_pos:
        with torch.no_grad():
            attention.rel_pos_h.normal_(std=0.5)
            attention.rel_pos_w.normal_(std=0.5)
    x = torch.randn(2, size, size, 96)
    with torch.inference_mode():
        expected = attention(x)
        fused = RelPosSdpaAttention(attention)(x)
    torch.testing.assert_close(fused, expected, atol=2e-5, rtol=1e-4)


def test_mixed_precision_encoder_matches_upstream_in_fp32():
    """With fp32 as the "low" dtype the converted ViT computes exactly upstream's function."""
    import copy

    from sam_backends.speed.fast_encoder import accelerate_sam1_encoder, sam1_encode

    model = build_random_model(small_sam1_spec(encoder_depth=3, encoder_global_attn_indexes=(1,)))
    converted = copy.deepcopy(model.image_encoder)
    accelerate_sam1_encoder(converted, torch.float32)
    image = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        expected = model.image_encoder(image)
        got = sam1_encode(converted, image)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _torch_sam1_masks(low, input_size, original_size):
    up = F.interpolate(torch.from_numpy(low)[None], (1024, 1024), mode="bilinear",
                       align_corners=False)[..., : input_size[0], : input_size[1]]
    return (F.interpolate(up, original_size, mode="bilinear", align_corners=False) > 0)[0].numpy()


@pytest.mark.parametrize("original_size", [(534, 800), (1200, 1800), (640, 360), (300, 200)])
def test_opencv_upscaling_matches_upstream_interpolation(original_size):
    rng = np.random.default_rng(0)
    low = F.avg_pool2d(torch.from_numpy(rng.standard_normal((3, 256, 256)).astype(np.float32) * 4),
                       5, 1, 2).numpy()
    height, width = original_size
    scale = 1024 / max(height, width)
    input_size = (int(height * scale + 0.5), int(width * scale + 0.5))
    expected1 = _torch_sam1_masks(low, input_size, original_size)
    expected2 = (F.interpolate(torch.from_numpy(low)[None], original_size, mode="bilinear",
                               align_corners=False) > 0)[0].numpy()
    got1 = sam1_masks(low, input_size, original_size)
    got2 = sam2_masks(low, original_size)
    assert got1.shape == got2.shape == (3, height, width) and got1.dtype == bool
    # Only float rounding may differ: a handful of pixels sitting on the threshold.
    assert (got1 != expected1).sum() <= 1e-5 * expected1.size + 2
    assert (got2 != expected2).sum() <= 1e-5 * expected2.size + 2


# -- the bf16 backends through the public API ------------------------------------------------

@pytest.fixture(scope="module", params=["sam1", "sam2"])
def backends(request, sam1_small, sam2_small):
    checkpoint = sam1_small if request.param == "sam1" else sam2_small
    return {
        precision: create_backend(checkpoint.spec, checkpoint=checkpoint.path, device="cpu",
                                  precision=precision)
        for precision in ("fp32", "bf16")
    }


def test_bf16_backend_keeps_the_contract(backends):
    fast = backends["bf16"]
    assert fast.precision == "bf16"
    image = synthetic_image(240, 320, seed=5)
    embedding = fast.encode(image)
    assert embedding.precision == "bf16" and embedding.original_size == (240, 320)
    for prompts, count in (
        (Prompts(points=[(160, 120)], labels=[1], multimask=True), 3),
        (Prompts(box=(40, 30, 250, 200)), 1),
        (Prompts(points=[(160, 120), (60, 50)], labels=[1, 0], box=(40, 30, 250, 200)), 1),
    ):
        prediction = fast.predict(embedding, prompts)
        assert prediction.masks.shape == (count, 240, 320) and prediction.masks.dtype == bool
        assert prediction.scores.shape == (count,) and prediction.scores.dtype == np.float32
        assert prediction.low_res_logits.shape == (count, 256, 256)
        assert prediction.low_res_logits.dtype == np.float32
    best = prediction.low_res_logits[prediction.best_index: prediction.best_index + 1]
    refined = fast.predict(embedding, Prompts(points=[(100, 90)], labels=[1], mask_input=best))
    assert refined.masks.shape == (1, 240, 320)


def test_bf16_embeddings_hold_the_features_in_half_the_bytes_and_are_not_interchangeable(
        backends):
    """The upstream features in bf16 (half of fp32's bytes), plus the first layer's three
    projections (N x 128 each for these decoders), and nothing else."""
    image = synthetic_image(200, 260, seed=6)
    exact = backends["fp32"].encode(image)
    fast = backends["bf16"].encode(image)
    projections = {"first_t2i_keys", "first_t2i_values", "first_i2t_queries"}
    assert projections <= set(fast.features)
    projected = sum(fast.features[name].nbytes for name in projections)
    assert projected == 3 * 64 * 64 * 128 * 2
    assert fast.nbytes == exact.nbytes // 2 + projected
    prompts = Prompts(points=[(100, 100)], labels=[1])
    with pytest.raises(SamBackendError, match="bf16"):
        backends["bf16"].predict(exact, prompts)
    with pytest.raises(SamBackendError, match="fp32"):
        backends["fp32"].predict(fast, prompts)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_single_or_candidates_keeps_the_two_call_rule(backends, precision, monkeypatch):
    """``predict_single_or_candidates`` answers what ``predict`` gives with one mask, or with
    three when that one scores below the bar, masks and scores alike; the exact backend
    decodes twice for an unsure answer (upstream selects inside its forward), the fast one
    once."""
    backend = backends[precision]
    image = synthetic_image(200, 260, seed=7)
    embedding = backend.encode(image)
    first = backend.predict(embedding, Prompts(points=[(130, 100)], labels=[1], multimask=True))
    prompts = Prompts(points=[(130, 100), (40, 50)], labels=[1, 0],
                      mask_input=first.low_res_logits[first.best_index][None])
    single = backend.predict(embedding, prompts)
    three = backend.predict(embedding, Prompts(points=prompts.points, labels=prompts.labels,
                                               mask_input=prompts.mask_input, multimask=True))
    decodes = []
    decode = backend._decode
    monkeypatch.setattr(backend, "_decode", lambda *a: decodes.append(1) or decode(*a))
    if precision != "fp32":
        tokens = backend.fast_decoder._tokens
        monkeypatch.setattr(backend.fast_decoder, "_tokens",
                            lambda *a: decodes.append(1) or tokens(*a))
    score = float(single.scores[0])
    sure = backend.predict_single_or_candidates(embedding, prompts, score)
    assert decodes == [1]
    decodes.clear()
    unsure = backend.predict_single_or_candidates(embedding, prompts, score + 1e-3)
    assert len(decodes) == (2 if precision == "fp32" else 1)
    for got, want in ((sure, single), (unsure, three)):
        assert got.masks.shape == want.masks.shape
        np.testing.assert_array_equal(got.masks, want.masks)
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.low_res_logits, want.low_res_logits)


def test_exact_mode_does_not_use_the_fast_path(backends):
    exact = backends["fp32"]
    assert not hasattr(exact, "fast_decoder")
    assert all(p.dtype == torch.float32 for p in exact.model.parameters())
