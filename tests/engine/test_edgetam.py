"""EdgeTAM through transformers: loading, exactness of image masks, prompts, bad folders.

A reduced-size random ``EdgeTamVideoConfig`` (a one-block-per-stage RepViT, 32-wide decoder) is
saved with ``save_pretrained`` and loaded through ``create_backend("edgetam", checkpoint=folder)``;
the reference is transformers' processor + ``EdgeTamModel`` + ``post_process_masks`` called the
documented way on the same folder, with the image itself (not our cached features).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_backends import create_backend, get_spec
from sam_backends.errors import CheckpointCorruptError, CheckpointMissingError
from sam_backends.types import Prompts

IMAGE_HW = (90, 120)


@pytest.fixture(scope="module")
def backend(edgetam_small):
    return create_backend("edgetam", checkpoint=edgetam_small, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def embedding(backend, image):
    return backend.encode(image)


@pytest.fixture(scope="module")
def reference(edgetam_small):
    """transformers' EdgeTamModel and the folder's processor, loaded the documented way."""
    from transformers import AutoProcessor, EdgeTamModel

    model = EdgeTamModel.from_pretrained(str(edgetam_small)).eval()
    return model, AutoProcessor.from_pretrained(str(edgetam_small))


def _reference_masks(reference, image, prompts: Prompts, mask_input=None):
    model, processor = reference
    args = {}
    if prompts.points:
        args["input_points"] = [[[list(p) for p in prompts.points]]]
        args["input_labels"] = [[list(prompts.labels)]]
    if prompts.box is not None:
        args["input_boxes"] = [[list(prompts.box)]]
    inputs = processor(images=image, return_tensors="pt", **args)
    if mask_input is not None:
        inputs["input_masks"] = torch.from_numpy(np.array(mask_input))[None]
    with torch.inference_mode():
        out = model(**inputs, multimask_output=prompts.multimask)
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0]
    return masks[0].numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()


PROMPTS = {
    "point": Prompts(points=[(30.0, 40.0)], labels=[1]),
    "background points": Prompts(points=[(30.0, 40.0), (100.5, 12.0)], labels=[1, 0]),
    "box": Prompts(box=(10, 8, 90, 70)),
    "box and points": Prompts(points=[(50.0, 33.0)], labels=[1], box=(10, 8, 90, 70)),
    "multimask": Prompts(points=[(60.0, 45.0)], labels=[1], multimask=True),
}


@pytest.mark.parametrize("name", list(PROMPTS))
def test_masks_equal_transformers_pixel_for_pixel(backend, embedding, reference, image, name):
    prompts = PROMPTS[name]
    prediction = backend.predict(embedding, prompts)
    masks, scores, low_res = _reference_masks(reference, image, prompts)
    assert prediction.masks.shape == (masks.shape[0], *IMAGE_HW)
    assert masks.any() and not masks.all()  # random weights still draw an edge
    np.testing.assert_array_equal(prediction.masks, masks)
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prediction.low_res_logits, low_res, rtol=1e-4, atol=1e-4)


def test_refinement_feeds_the_previous_logits_back(backend, embedding, reference, image):
    first = backend.predict(embedding, PROMPTS["point"])
    logits = first.low_res_logits[first.best_index: first.best_index + 1]
    prompts = Prompts(points=[(30.0, 40.0), (70.0, 60.0)], labels=[1, 1], mask_input=logits)
    refined = backend.predict(embedding, prompts)
    masks, _, _ = _reference_masks(reference, image, prompts, mask_input=logits)
    np.testing.assert_array_equal(refined.masks, masks)
    plain = backend.predict(embedding, Prompts(points=prompts.points, labels=prompts.labels))
    assert not np.array_equal(plain.low_res_logits, refined.low_res_logits)


def test_the_embedding_holds_the_decoder_inputs(backend, embedding):
    levels = embedding.features["image_embeddings"]
    assert [tuple(t.shape[-2:]) for t in levels] == [(256, 256), (128, 128), (64, 64)]
    assert embedding.input_size == (1024, 1024) and embedding.original_size == IMAGE_HW
    assert embedding.nbytes == sum(t.numel() * 4 for t in levels)


def test_catalogue_entry_and_capabilities():
    spec = get_spec("edgetam")
    assert spec.hf_repo == "yonigozlan/EdgeTAM-hf" and spec.license == "Apache-2.0"
    caps = spec.capabilities
    assert caps.points and caps.box and caps.mask_refinement and caps.multimask
    assert caps.everything and caps.video and not caps.text


def test_a_folder_without_config_is_reported(tmp_path):
    with pytest.raises(CheckpointMissingError, match="config.json"):
        create_backend("edgetam", checkpoint=tmp_path, device="cpu", precision="fp32")


def test_weights_that_do_not_fit_are_refused(edgetam_small, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "damaged"
    shutil.copytree(edgetam_small, folder)
    state = load_file(str(folder / "model.safetensors"))
    dropped = next(k for k in state if k.startswith("mask_decoder."))
    del state[dropped]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointCorruptError, match="1 missing"):
        create_backend("edgetam", checkpoint=folder, device="cpu", precision="fp32")


def test_segment_everything_runs_point_by_point_through_predict(backend, embedding):
    from sam_backends.automatic import EverythingParams, segment_everything

    params = EverythingParams(points_per_side=2, pred_iou_thresh=0.0,
                              stability_score_thresh=0.0)
    found = segment_everything(backend, embedding, params)
    assert len(found.scores) >= 1 and found.masks.shape[1:] == IMAGE_HW
    height, width = IMAGE_HW
    candidates = [mask for x in (width / 4, 3 * width / 4) for y in (height / 4, 3 * height / 4)
                  for mask in backend.predict(embedding, Prompts(points=[(x, y)], labels=[1],
                                                                 multimask=True)).masks]
    for mask in found.masks:  # each kept mask is one of the grid points' candidates
        assert min(np.count_nonzero(mask != c) for c in candidates) <= mask.size // 1000


# -- video: EdgeTamVideoSession against transformers' documented video loop -------------------

VIDEO_HW = (72, 96)
BOX = (10.0, 8.0, 60.0, 50.0)
POINTS = Prompts(points=[(70.5, 30.25)], labels=[1])
CORRECTION = Prompts(points=[(20.0, 20.0), (50.0, 40.0)], labels=[1, 0])
FRAMES = 3


@pytest.fixture(scope="module")
def frames():
    from sam_backends.testing.random_models import synthetic_image

    base = synthetic_image(*VIDEO_HW, seed=3)
    return [np.roll(base, 5 * i, axis=1) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def tracker(edgetam_small):
    from sam_backends.video import create_tracker

    return create_tracker("edgetam", checkpoint=edgetam_small, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def video_reference(edgetam_small):
    from transformers import AutoProcessor, EdgeTamVideoModel

    model = EdgeTamVideoModel.from_pretrained(str(edgetam_small)).eval()
    return model, AutoProcessor.from_pretrained(str(edgetam_small))


class Documented:
    """transformers' documented loop: ``init_video_session(video=...)``,
    ``add_inputs_to_inference_session``, ``model(inference_session, frame_idx)``,
    ``propagate_in_video_iterator``, ``post_process_masks``."""

    def __init__(self, reference, frames):
        self.model, self.processor = reference
        self.session = self.processor.init_video_session(
            video=np.stack(frames), inference_device="cpu", dtype=torch.float32)

    def masks(self, out):
        logits = self.processor.post_process_masks(
            [out.pred_masks], original_sizes=[list(VIDEO_HW)], binarize=False)[0]
        return {o: (logits[k, 0] > 0).numpy() for k, o in enumerate(out.object_ids)}

    def add(self, frame, obj, prompts: Prompts):
        args = {}
        if prompts.points:
            args = {"input_points": [[[list(p) for p in prompts.points]]],
                    "input_labels": [[list(prompts.labels)]]}
        if prompts.box is not None:
            args["input_boxes"] = [[list(prompts.box)]]
        self.processor.add_inputs_to_inference_session(
            inference_session=self.session, frame_idx=frame, obj_ids=obj, **args)
        with torch.inference_mode():
            return self.masks(self.model(inference_session=self.session, frame_idx=frame))[obj]

    def propagate(self, **kwargs):
        with torch.inference_mode():
            return [(out.frame_idx, self.masks(out)) for out in
                    self.model.propagate_in_video_iterator(self.session, **kwargs)]


def assert_same(ours, theirs):
    assert [f for f, _ in ours] == [f for f, _ in theirs]
    for (frame, mine), (_, documented) in zip(ours, theirs):
        assert sorted(mine) == sorted(documented), frame
        for obj in mine:
            assert mine[obj].dtype == np.bool_ and mine[obj].shape == VIDEO_HW
            np.testing.assert_array_equal(mine[obj], documented[obj], err_msg=f"{frame}/{obj}")


def test_video_masks_equal_transformers_documented_loop(tracker, video_reference, frames):
    from sam_backends.video import open_video

    session = tracker.start(open_video(frames))
    documented = Documented(video_reference, frames)
    mine = session.add_prompts(0, 1, Prompts(box=BOX))
    np.testing.assert_array_equal(mine, documented.add(0, 1, Prompts(box=BOX)))
    assert 0 < mine.mean() < 1  # a real mask, not all blank or all full
    np.testing.assert_array_equal(session.add_prompts(0, 2, POINTS), documented.add(0, 2, POINTS))
    ours = list(session.propagate())
    assert_same(ours, documented.propagate())
    assert all(0 < masks[1].mean() < 1 for _, masks in ours)  # tracked, not blanked as lost
    assert session.object_ids == [1, 2] and sorted(session.masks) == list(range(FRAMES))
    # A correction on a tracked frame: transformers stores it as a plain tracked output, which
    # its next propagation overwrites; ours keeps it as a conditioning frame, as SAM 2.1 does.
    corrected = session.add_prompts(2, 1, CORRECTION)
    assert not np.array_equal(corrected, dict(ours)[2][1])
    np.testing.assert_array_equal(dict(session.propagate(start_frame=2))[2][1], corrected)


@pytest.mark.slow
def test_video_reverse_from_a_later_prompt(tracker, video_reference, frames):
    from sam_backends.video import open_video

    session = tracker.start(open_video(frames))
    documented = Documented(video_reference, frames)
    np.testing.assert_array_equal(session.add_prompts(1, 7, POINTS), documented.add(1, 7, POINTS))
    assert_same(list(session.propagate(reverse=True)), documented.propagate(reverse=True))
    assert [f for f, _ in session.propagate_both()] == [1, 2, 1, 0]


def test_video_objects_go_reset_and_memory_stays_bounded(tracker, frames):
    from sam_backends.video import VideoTrackingError, open_video

    video = open_video(frames)
    both, solo = tracker.start(video), tracker.start(video)
    both.add_prompts(0, 1, POINTS)
    both.add_prompts(0, 2, Prompts(box=BOX))
    solo.add_prompts(0, 2, Prompts(box=BOX))
    both.remove_object(1)
    assert both.object_ids == [2] and both.masks.object_ids == [2]
    assert_same(list(both.propagate(max_frames=2)), list(solo.propagate(max_frames=2)))
    cache = both._session.cache
    assert len(cache.features) <= tracker.feature_cache_frames == 2
    assert not isinstance(both._session.processed_frames, dict)  # frames made on demand
    # 8 MiB of features a frame, 42 MiB of position encodings held once (not once a frame)
    assert sum(t.numel() * 4 for t in cache.positions) == 42 * 2**20
    assert 0 < both.state_nbytes < (2 * 8 + 42 + 6) * 2**20
    with pytest.raises(VideoTrackingError, match="no object 5"):
        both.remove_object(5)
    with pytest.raises(VideoTrackingError, match="not in the video"):
        both.add_prompts(FRAMES, 1, POINTS)
    both.reset()
    assert both.object_ids == [] and len(both.masks) == 0
    with pytest.raises(VideoTrackingError, match="prompt an object"):
        both.propagate()


@pytest.mark.slow
def test_full_size_one_click_and_one_tracked_frame(tmp_path, frames):
    """The published architecture (random weights): one click on an image and one tracked
    video frame equal transformers'."""
    from transformers import AutoProcessor, EdgeTamModel, EdgeTamVideoModel

    from sam_backends.testing.edgetam_models import write_random_edgetam
    from sam_backends.video import create_tracker, open_video

    folder = write_random_edgetam(tmp_path / "edgetam")
    backend = create_backend("edgetam", checkpoint=folder, device="cpu", precision="fp32")
    image = frames[0]
    prompts = Prompts(points=[(40.0, 30.0)], labels=[1])
    ours = backend.predict(backend.encode(image), prompts).masks
    reference = (EdgeTamModel.from_pretrained(str(folder)).eval(),
                 AutoProcessor.from_pretrained(str(folder)))
    np.testing.assert_array_equal(ours, _reference_masks(reference, image, prompts)[0])

    tracker = create_tracker("edgetam", checkpoint=folder, device="cpu", precision="fp32")
    session = tracker.start(open_video(frames[:2]))
    documented = Documented((EdgeTamVideoModel.from_pretrained(str(folder)).eval(),
                             reference[1]), frames[:2])
    np.testing.assert_array_equal(session.add_prompts(0, 1, prompts),
                                  documented.add(0, 1, prompts))
    assert_same(list(session.propagate()), documented.propagate())
