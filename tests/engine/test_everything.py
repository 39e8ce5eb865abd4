""""Segment everything" (``sam_backends.automatic``) against upstream's generators, fp32.

Small random-weight models (the decoder is full size), a 4x4 grid and a 150 x 200
image, so each test takes seconds. Random weights give predicted IoUs near 0 (SAM 1) or 0.5
(SAM 2.1) and stability scores around 0.7-0.93, so the thresholds are lowered
(``RANDOM_THRESHOLDS``) to keep about half of the candidates. Their masks barely depend on the
point, so the agreement tests turn NMS off (``box_nms_thresh=1.0``): with it on, one or two
masks survive and agreement would say little.
"""

from __future__ import annotations

import dataclasses
import inspect

import cv2
import numpy as np
import pytest
import torch

from sam_backends import PromptError, SamBackendError, UnsupportedPromptError, create_backend
from sam_backends.automatic import (
    MAX_POINTS_PER_SIDE,
    EverythingCancelledError,
    EverythingParamError,
    EverythingParams,
    segment_everything,
)
from sam_backends.automatic.agreement import best_ious, matched_share
from sam_backends.automatic.decoding import GridDecoder
from sam_backends.automatic.grid import grid_points, point_grid
from sam_backends.masks import mask_boxes
from sam_backends.testing.random_models import synthetic_image

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")

IMAGE_SIZE = (150, 200)
# Lowered for random weights (see the module docstring); upstream: 0.88 / 0.8 and 0.95.
RANDOM_THRESHOLDS = {
    "sam1": {"pred_iou_thresh": 0.01, "stability_score_thresh": 0.85},
    "sam2": {"pred_iou_thresh": 0.47, "stability_score_thresh": 0.85},
}


def random_params(family: str, **changes) -> EverythingParams:
    return EverythingParams(**{"points_per_side": 4, **RANDOM_THRESHOLDS[family], **changes})


@pytest.fixture(scope="module")
def image():
    return synthetic_image(*IMAGE_SIZE, seed=1)


@pytest.fixture(scope="module", params=["sam1", "sam2"])
def model(request, image):
    """(family, checkpoint, backend, embedding of ``image``), fp32."""
    checkpoint = request.getfixturevalue(f"{request.param}_small")
    backend = create_backend(checkpoint.spec, checkpoint=checkpoint.path, device="cpu",
                             precision="fp32")
    return request.param, checkpoint, backend, backend.encode(image)


@pytest.fixture(scope="module")
def everything(model):
    """``model``'s instances with NMS off (``box_nms_thresh=1.0``), 4x4 grid."""
    family, _, backend, embedding = model
    return segment_everything(backend, embedding, random_params(family, box_nms_thresh=1.0))


def upstream_generator(family, checkpoint, **kwargs):
    """Upstream's generator on the same checkpoint file (fp32, CPU)."""
    spec, path = checkpoint
    if family == "sam1":
        from segment_anything import SamAutomaticMaskGenerator
        from segment_anything.build_sam import _build_sam

        return SamAutomaticMaskGenerator(_build_sam(**spec.arch, checkpoint=str(path)), **kwargs)
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2

    model = build_sam2(spec.arch["config"], ckpt_path=str(path), device="cpu",
                       hydra_overrides_extra=list(spec.arch["overrides"]))
    return SAM2AutomaticMaskGenerator(model, **kwargs)


def upstream_masks(generator, image, with_scores=False):
    """Upstream's masks (R x H x W bool), and with ``with_scores`` their predicted IoUs."""
    records = generator.generate(image)
    masks = (np.stack([r["segmentation"] for r in records]) if records
             else np.zeros((0, *image.shape[:2]), bool))
    scores = np.array([r["predicted_iou"] for r in records])
    return (masks, scores) if with_scores else masks


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["sam1", "sam2"])
def test_defaults_and_names_match_upstream(family):
    if family == "sam1":
        from segment_anything import SamAutomaticMaskGenerator as Generator
    else:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Generator
    upstream = {name: p.default for name, p in inspect.signature(Generator).parameters.items()}
    params = EverythingParams()
    for field in dataclasses.fields(params):
        if field.name in upstream and field.name != "pred_iou_thresh":
            assert getattr(params, field.name) == upstream[field.name], field.name
    assert params.iou_threshold(family) == upstream["pred_iou_thresh"]
    assert EverythingParams(pred_iou_thresh=0.5).iou_threshold(family) == 0.5


def test_a_thousand_points_per_side_is_refused():
    with pytest.raises(EverythingParamError, match=f"between 1 and {MAX_POINTS_PER_SIDE}") as info:
        EverythingParams(points_per_side=1000)
    assert info.value.field == "points_per_side" and isinstance(info.value, PromptError)
    assert "1,000" in str(info.value)


@pytest.mark.parametrize("name", ["pred_iou_thresh", "stability_score_thresh",
                                  "box_nms_thresh", "crop_nms_thresh"])
@pytest.mark.parametrize("value", [-0.01, 1.5, float("nan"), "0.5", True])
def test_thresholds_outside_unit_interval_are_refused(name, value):
    with pytest.raises(EverythingParamError, match=name) as info:
        EverythingParams(**{name: value})
    assert info.value.field == name


@pytest.mark.parametrize("changes, field", [
    ({"points_per_side": 0}, "points_per_side"),
    ({"points_per_side": 8.0}, "points_per_side"),
    ({"points_per_batch": 0}, "points_per_batch"),
    ({"points_per_batch": 5000}, "points_per_batch"),
    ({"stability_score_offset": -1.0}, "stability_score_offset"),
    ({"stability_score_offset": 1e308}, "stability_score_offset"),
    ({"mask_threshold": float("inf")}, "mask_threshold"),
    ({"min_mask_region_area": -1}, "min_mask_region_area"),
    ({"crop_n_layers": 1}, "crop_n_layers"),
    ({"multimask_output": 1}, "multimask_output"),
])
def test_other_invalid_params_are_refused(changes, field):
    with pytest.raises(EverythingParamError, match=field) as info:
        EverythingParams(**changes)
    assert info.value.field == field


def test_params_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EverythingParams().points_per_side = 4


def test_low_res_boxes_are_the_thresholded_masks_tight_boxes():
    """Boxes from the logits' row and column maxima equal the tight boxes of ``logits > t``
    (``mask_boxes``, which reads the masks themselves), empty masks included."""
    from sam_backends.automatic.filters import low_res_boxes

    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(12, 40, 56, generator=generator) * 3
    logits[3] = -1.0  # empty at threshold 0.5
    logits[4] = -1.0
    logits[4, 17, 29] = 2.0  # a single pixel
    logits[5, :, :] = 0.5  # equal to the threshold: not inside (strictly greater)
    for threshold in (0.5, 2.5, 6.0):
        masks = (logits > threshold).numpy()
        expected = mask_boxes(masks).astype(np.float32)
        got = low_res_boxes(logits, threshold).numpy()
        np.testing.assert_array_equal(got, expected)
    assert low_res_boxes(logits, 0.5)[4].tolist() == [29.0, 17.0, 30.0, 18.0]
    assert low_res_boxes(logits, 0.5)[3].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_grid_matches_upstream():
    from segment_anything.utils.amg import build_point_grid

    for n in (1, 4, 32):
        np.testing.assert_array_equal(point_grid(n), build_point_grid(n))
    pixels = grid_points(2, (100, 200))
    np.testing.assert_allclose(pixels, [[50, 25], [150, 25], [50, 75], [150, 75]])


# -- refusals --------------------------------------------------------------------------------
def test_grabcut_is_refused(image):
    backend = create_backend("grabcut")
    with pytest.raises(UnsupportedPromptError, match="SAM 1 or SAM 2.1"):
        segment_everything(backend, backend.encode(image))


def test_foreign_embedding_and_params_are_refused(model, image):
    _, _, backend, embedding = model
    other = create_backend("grabcut").encode(image)
    with pytest.raises(SamBackendError, match="encode the image"):
        segment_everything(backend, other)
    with pytest.raises(PromptError, match="EverythingParams"):
        segment_everything(backend, embedding, {"points_per_side": 4})


# -- decoding and agreement ------------------------------------------------------------------
def test_fast_decoder_equals_upstream_batched_decoder(model):
    _, _, backend, embedding = model
    points = grid_points(2, embedding.original_size)
    with torch.inference_mode():
        fast = GridDecoder(backend, embedding, True, strategy="fast")(points)
        upstream = GridDecoder(backend, embedding, True, strategy="upstream")(points)
    assert fast[0].shape == upstream[0].shape == (4, 3, 256, 256)
    torch.testing.assert_close(fast[0], upstream[0], rtol=0, atol=1e-3)
    torch.testing.assert_close(fast[1], upstream[1], rtol=0, atol=1e-5)


def test_grid_decoder_folds_rows_with_tables_of_its_own(model):
    """The fast grid decoder decodes with ``row_folding``'s tables, made for the run: the
    embedding (which the cache holds) does not grow."""
    from sam_backends.speed.row_folding import TABLE_NAMES

    _, _, backend, embedding = model
    before = set(embedding.features)
    decoder = GridDecoder(backend, embedding, True)
    assert decoder.strategy == "fast" and set(TABLE_NAMES) <= set(decoder._prepared)
    assert set(embedding.features) == before and not set(TABLE_NAMES) & before


@pytest.mark.parametrize("multimask", [True, False])
def test_points_the_iou_filter_rules_out_are_not_upscaled(model, multimask):
    """``GridDecoder(iou_floor=...)`` skips the upscaling of a point none of whose candidates can
    score above the floor: every other point's logits and scores are exactly those of the full
    decode, and a skipped point reports zero logits and scores the filter drops anyway."""
    _, _, backend, embedding = model
    points = grid_points(4, embedding.original_size)
    with torch.inference_mode():
        logits, scores = GridDecoder(backend, embedding, multimask)(points)
        floor = float(scores.amax(dim=1).median())  # rules out about half of the points
        short = GridDecoder(backend, embedding, multimask, iou_floor=floor)
        short_logits, short_scores = short(points)
    same = [torch.equal(short_logits[i], logits[i]) and torch.equal(short_scores[i], scores[i])
            for i in range(len(points))]
    skipped = [not short_logits[i].any() and bool((short_scores[i] <= floor).all())
               and bool((scores[i] <= floor).all()) for i in range(len(points))]
    if multimask:  # candidate by candidate: its own logits (the product that makes them has
        # fewer rows, so float rounding may differ), or zeros where it cannot pass
        same = [torch.equal(short_scores[i], scores[i]) and all(
            torch.allclose(short_logits[i, j], logits[i, j], rtol=0, atol=1e-5)
            or (not short_logits[i, j].any() and bool(scores[i, j] <= floor))
            for j in range(scores.shape[1])) for i in range(len(points))]
        partly = [i for i in range(len(points)) if (scores[i] > floor).any()
                  and not all(short_logits[i, j].any() for j in range(scores.shape[1]))]
        assert partly and all(same[i] for i in partly)
    assert all(a or b for a, b in zip(same, skipped))
    ruled_out = sum(skipped) if multimask else sum(b and not a for a, b in zip(same, skipped))
    assert 0 < short.skipped == ruled_out < len(points)


def test_the_iou_shortcut_changes_no_instance(model, monkeypatch):
    """segment_everything with the shortcut (its default) equals the same run without it."""
    import sam_backends.automatic.generator as generator

    family, _, backend, embedding = model
    params = random_params(family, box_nms_thresh=1.0)
    with_shortcut = segment_everything(backend, embedding, params)
    original = generator.grid_decoder
    monkeypatch.setattr(generator, "grid_decoder",
                        lambda b, e, multimask, floor=0.0: original(b, e, multimask, 0.0))
    without = segment_everything(backend, embedding, params)
    assert len(with_shortcut) == len(without) >= 1
    np.testing.assert_array_equal(with_shortcut.masks, without.masks)
    np.testing.assert_array_equal(with_shortcut.scores, without.scores)


def test_agrees_with_upstream_generator(model, image):
    family, checkpoint, backend, embedding = model
    settings = {**RANDOM_THRESHOLDS[family], "points_per_side": 4, "box_nms_thresh": 1.0}
    ours = segment_everything(backend, embedding, EverythingParams(**settings))
    generator = upstream_generator(family, checkpoint, **settings)
    theirs, their_scores = upstream_masks(generator, image, with_scores=True)
    assert len(theirs) >= 10, "thresholds too high for these random weights"
    assert matched_share(theirs, ours.masks) >= 0.95
    assert matched_share(ours.masks, theirs) >= 0.9
    assert abs(len(ours) - len(theirs)) <= max(2, 0.1 * len(theirs))
    # The same candidates survive: upstream's predicted IoUs are found among ours.
    found = np.abs(their_scores[:, None] - ours.scores[None, :]).min(axis=1) < 1e-4
    assert found.mean() >= 0.9


def test_instances_at_original_resolution(model, everything, image):
    backend = model[2]
    found = everything
    assert len(found) > 10
    assert found.masks.shape[1:] == image.shape[:2] and found.masks.dtype == bool
    assert found.image_size == image.shape[:2]
    np.testing.assert_array_equal(found.boxes, mask_boxes(found.masks))
    assert found.areas.min() > 0
    assert np.all(np.diff(found.scores) <= 0) and 0 <= found.scores.min() <= found.scores.max() <= 1
    assert found.labels == ("",) * len(found) and found.model_id == backend.model_id
    assert set(found.seconds) == {"decode", "postprocess"}


def test_masks_empty_at_full_resolution_are_dropped_in_place(model, everything, monkeypatch):
    """A candidate whose upscaled mask is empty is dropped with its score, and the kept masks
    move down inside the upscaled stack rather than into a second N x H x W array."""
    from sam_backends.automatic import generator

    family, _, backend, embedding = model
    made = []

    def upscale_emptying_some(decoder, logits, threshold):
        masks = original(decoder, logits, threshold)
        masks[1::3] = False
        made.append(masks)
        return masks

    original = generator._upscale
    monkeypatch.setattr(generator, "_upscale", upscale_emptying_some)
    found = segment_everything(backend, embedding, random_params(family, box_nms_thresh=1.0))
    kept = np.array([i for i in range(len(everything)) if i % 3 != 1])
    np.testing.assert_array_equal(found.masks, everything.masks[kept])
    np.testing.assert_array_equal(found.scores, everything.scores[kept])
    np.testing.assert_array_equal(found.boxes, mask_boxes(found.masks))
    assert np.shares_memory(found.masks, made[0])


def test_compact_equals_fancy_indexing():
    from sam_backends.automatic.generator import _compact

    rng = np.random.default_rng(3)
    for keep in ([], [0], [2, 3, 5], [1, 4], list(range(6))):
        masks = rng.random((6, 5, 7)) > 0.5
        expected = masks[keep]
        np.testing.assert_array_equal(_compact(masks, np.asarray(keep, dtype=int)), expected)


def test_nms_removes_duplicates(model, everything):
    from torchvision.ops import box_iou

    family, _, backend, embedding = model
    deduplicated = segment_everything(backend, embedding, random_params(family))
    assert 1 <= len(deduplicated) < len(everything)
    iou = box_iou(torch.as_tensor(deduplicated.boxes), torch.as_tensor(deduplicated.boxes))
    assert float((iou - torch.eye(len(iou))).max()) <= 0.7
    # Every duplicate removed overlaps a kept mask.
    assert best_ious(everything.masks, deduplicated.masks).min() > 0


def test_cancel_stops_and_progress_counts(model):
    family, _, backend, embedding = model
    calls = []
    params = random_params(family, points_per_side=4, points_per_batch=5)
    found = segment_everything(backend, embedding, params, progress=lambda *a: calls.append(a))
    assert calls == [(0, 16), (5, 16), (10, 16), (15, 16), (16, 16)] and len(found) >= 1
    polled = []

    def cancel():
        polled.append(1)
        return len(polled) > 1

    with pytest.raises(EverythingCancelledError, match="after 5 of 16") as info:
        segment_everything(backend, embedding, params, cancel=cancel)
    assert (info.value.done, info.value.total) == (5, 16) and len(polled) == 2
    assert isinstance(info.value, SamBackendError)


def _components(mask: np.ndarray) -> np.ndarray:
    """Areas of the 8-connected components of a bool mask."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA]


def test_min_mask_region_area_is_honoured(model, everything):
    family, _, backend, embedding = model
    area = 400
    plain = everything
    cleaned = segment_everything(
        backend, embedding, random_params(family, box_nms_thresh=1.0, min_mask_region_area=area)
    )
    assert any(len(_components(m)) > 1 and _components(m).min() < area for m in plain.masks)
    assert len(cleaned) >= 1
    for mask in cleaned.masks:
        islands = _components(mask)
        assert len(islands) == 1 or islands.min() >= area  # all small: the largest is kept
        holes = _components(~mask)  # background parts (including the outside)
        assert len(holes) == 0 or holes.min() >= area
    np.testing.assert_array_equal(cleaned.boxes, mask_boxes(cleaned.masks))


def test_min_mask_region_area_agrees_with_upstream(sam1_small, image):
    """SAM 1 only: upstream SAM 2 also fills holes at low res with a CUDA-only extension."""
    backend = create_backend(sam1_small.spec, checkpoint=sam1_small.path, device="cpu",
                             precision="fp32")
    settings = {**RANDOM_THRESHOLDS["sam1"], "points_per_side": 4, "min_mask_region_area": 400}
    ours = segment_everything(backend, backend.encode(image), EverythingParams(**settings))
    theirs = upstream_masks(upstream_generator("sam1", sam1_small, **settings), image)
    assert len(theirs) >= 1 and matched_share(theirs, ours.masks) >= 0.95


@pytest.mark.parametrize("family", ["sam1", pytest.param("sam2", marks=pytest.mark.slow)])
def test_fast_precision_backend_works(family, request, image):
    checkpoint = request.getfixturevalue(f"{family}_small")
    backend = create_backend(checkpoint.spec, checkpoint=checkpoint.path, device="cpu",
                             precision="bf16")
    params = EverythingParams(points_per_side=1, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    found = segment_everything(backend, backend.encode(image), params)
    assert 1 <= len(found) <= 3 and found.masks.shape[1:] == image.shape[:2]


@pytest.mark.slow
def test_full_size_sam2_tiny_agrees_with_upstream(tmp_path):
    from sam_backends import get_spec
    from sam_backends.testing.random_models import write_random_checkpoint

    spec = get_spec("sam2.1-tiny")
    path = write_random_checkpoint(spec, tmp_path / spec.checkpoint_file)
    image = synthetic_image(240, 320, seed=3)
    backend = create_backend(spec, checkpoint=path, device="cpu", precision="fp32")
    embedding = backend.encode(image)
    with torch.inference_mode():
        _, scores = GridDecoder(backend, embedding, True)(grid_points(4, image.shape[:2]))
    iou_thresh = round(float(scores.median()), 2)  # keeps about half, whatever the weights
    settings = {"points_per_side": 16, "pred_iou_thresh": iou_thresh,
                "stability_score_thresh": 0.85, "box_nms_thresh": 1.0}
    ours = segment_everything(backend, embedding, EverythingParams(**settings))
    theirs = upstream_masks(upstream_generator("sam2", (spec, path), **settings), image)
    assert len(theirs) >= 10
    assert matched_share(theirs, ours.masks) >= 0.95


def test_nothing_surviving_gives_empty_instances(model, image):
    """Thresholds no candidate passes: an empty result of the image's size, not a crash."""
    family, _, backend, embedding = model
    found = segment_everything(backend, embedding,
                               random_params(family, stability_score_thresh=1.0,
                                             stability_score_offset=20.0, points_per_side=2))
    assert len(found) == 0 and found.image_size == embedding.original_size
