"""SAM 3's own video model: words tracked through a clip, equal to transformers' documented loop.

A reduced random ``Sam3VideoModel`` (``small_sam3_video_config``; low thresholds so random
weights detect something, a 3-frame hotstart so the held-back output path runs) is saved as a
Hub folder and loaded through ``create_text_video_model("sam3", checkpoint=folder)``. The
reference is ``init_video_session(video=frames)``, ``add_text_prompt``,
``propagate_in_video_iterator`` and ``postprocess_outputs``, called the documented way on the
same folder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_backends.video.text_tracking import TextTrackParams

VIDEO_HW = (96, 128)
FRAMES = 6
THRESHOLD = 0.1  # the folder's score_threshold_detection: our run then equals the defaults


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from sam_backends.testing.text_models import small_sam3_video_config, write_random_sam3

    config = small_sam3_video_config(
        score_threshold_detection=THRESHOLD, new_det_thresh=THRESHOLD + 0.05,
        hotstart_delay=3, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2,
        recondition_every_nth_frame=2)
    return write_random_sam3(tmp_path_factory.mktemp("sam3v") / "sam3", config, seed=1)


@pytest.fixture(scope="module")
def frames():
    from sam_backends.testing.random_models import synthetic_image

    base = synthetic_image(*VIDEO_HW, seed=5)
    return [np.roll(base, 6 * i, axis=1) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def model(folder):
    from sam_backends.video.tracker import create_text_video_model

    return create_text_video_model("sam3", checkpoint=folder, device="cpu", precision="fp32")


def documented(folder, frames, phrases, **propagate):
    """transformers' documented SAM 3 video loop; {frame: {sam3 id: (mask, score, box)}}."""
    from transformers import Sam3VideoModel, Sam3VideoProcessor

    model = Sam3VideoModel.from_pretrained(str(folder)).eval()
    processor = Sam3VideoProcessor.from_pretrained(str(folder))
    session = processor.init_video_session(video=np.stack(frames), inference_device="cpu",
                                           dtype=torch.float32)
    processor.add_text_prompt(session, phrases)
    out = {}
    for output in model.propagate_in_video_iterator(inference_session=session, **propagate):
        found = processor.postprocess_outputs(session, output)
        out[output.frame_idx] = {
            int(i): (found["masks"][k].numpy(), float(found["scores"][k]),
                     tuple(found["boxes"][k].tolist()))
            for k, i in enumerate(found["object_ids"].tolist())}
    return out


def test_words_tracked_equal_transformers_documented_loop(model, folder, frames):
    from sam_backends.video import open_video

    run = model.start(open_video(frames), TextTrackParams(("dog", "car"), threshold=THRESHOLD))
    ours = list(run.run())
    theirs = documented(folder, frames, ["dog", "car"])
    assert [frame for frame, _ in ours] == sorted(theirs) == list(range(FRAMES))
    seen = 0
    for frame, masks in ours:
        expected = theirs[frame]
        assert sorted(masks) == sorted(i + 1 for i in expected), frame  # ids from 1
        for sam3_id, (mask, score, box) in expected.items():
            np.testing.assert_array_equal(masks[sam3_id + 1], mask, err_msg=f"{frame}/{sam3_id}")
            assert run.scores[(sam3_id + 1, frame)] == pytest.approx(score)
            seen += 1
    assert seen >= FRAMES, "random weights found too little for the comparison to mean much"
    result = run.result
    assert result.frames == list(range(FRAMES)) and not result.found_nothing
    assert {obj.phrase for obj in result.objects} <= {"dog", "car"}
    for obj in result.objects:
        first = min(f for f, masks in ours if obj.object_id in masks)
        assert obj.first_frame == first
        np.testing.assert_array_equal(result.masks.get_mask(first, obj.object_id),
                                      dict(ours)[first][obj.object_id])


def test_a_part_of_the_clip_and_a_stop(model, folder, frames):
    from sam_backends.video import open_video

    run = model.start(open_video(frames), TextTrackParams(("dog",), threshold=THRESHOLD))
    ours = dict(run.run(start_frame=2, max_frames=3))
    theirs = documented(folder, frames, ["dog"], start_frame_idx=2, max_frame_num_to_track=2)
    assert sorted(ours) == sorted(theirs) == [2, 3, 4]
    for frame, masks in ours.items():
        assert sorted(masks) == sorted(i + 1 for i in theirs[frame])
    stopped = model.start(open_video(frames), TextTrackParams(("dog",), threshold=THRESHOLD))
    assert list(stopped.run(should_stop=lambda: True)) == [] and stopped.result.frames == []


def test_a_threshold_nothing_passes_is_an_empty_success(model, frames):
    from sam_backends.video import open_video

    run = model.start(open_video(frames[:2]), TextTrackParams(("dog",), threshold=1.0))
    assert [frame for frame, masks in run.run() if masks] == []
    assert run.result.found_nothing and run.result.frames == [0, 1]


def test_the_run_keeps_its_settings_to_itself(model, frames):
    """Thresholds and caps are the run's: the shared model keeps its own."""
    from sam_backends.video import open_video

    shared = model.model.model
    before = (shared.score_threshold_detection, shared.new_det_thresh, shared.max_num_objects)
    run = model.start(open_video(frames[:2]),
                      TextTrackParams(("dog",), threshold=0.0, max_detections=1, max_objects=2))
    list(run.run())
    assert (shared.score_threshold_detection, shared.new_det_thresh,
            shared.max_num_objects) == before
    assert len(run.result.objects) <= 2
    assert run.result.capped_frames, "threshold 0 finds every query: the cap of 1 must cut"
    assert all(len(masks) <= 2 for masks in (run.result.masks[f] for f in run.result.frames))


def test_only_sam3_has_a_words_video_model():
    from sam_backends import get_spec
    from sam_backends.video.errors import VideoTrackingError
    from sam_backends.video.tracker import can_track_words, create_text_video_model

    assert can_track_words(get_spec("sam3")) and not can_track_words(get_spec("sam2.1-tiny"))
    with pytest.raises(VideoTrackingError, match="no video model of its own"):
        create_text_video_model("sam2.1-tiny")


def test_words_the_tokenizer_does_not_know_are_refused_before_any_frame(model, frames):
    from sam_backends.errors import PromptError
    from sam_backends.video import open_video

    with pytest.raises(PromptError, match="tokenizer does not know"):
        model.start(open_video(frames), TextTrackParams(("自転車",)))
