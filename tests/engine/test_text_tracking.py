"""Track by words (``sam_backends.video.text_tracking``): ids kept, new ids, objects ending, caps,
bad input; then the same loop on a real (random-weight) SAM 2 session and OWLv2 detector.

The id rules are checked against ``GroundTruthSession``, an in-memory session that tracks the
synthetic squares perfectly (the real tracker with random weights gives arbitrary masks, which
would make "kept its id" untestable); ``SquaresDetector`` reports the squares visible on a
frame. The real session and detector tests check the same loop runs end to end on them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_backends.errors import PromptError
from sam_backends.masks import mask_box
from sam_backends.text.pipeline import box_iou
from sam_backends.video import open_video
from sam_backends.video.text_tracking import (
    MAX_DETECTIONS_PER_FRAME,
    FrameDetection,
    TextTracker,
    TextTrackParams,
)

SIZE = (60, 80)  # H, W


def square(frame: int, x0: int, y0: int, side: int = 12, speed: int = 2) -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    x = x0 + speed * frame
    mask[y0:y0 + side, x:x + side] = True
    return mask


class Scene:
    """Named squares, each visible on a range of frames."""

    def __init__(self, squares: dict[str, tuple[int, int, range]]) -> None:
        self.squares = squares

    def masks(self, frame: int) -> dict[str, np.ndarray]:
        return {name: square(frame, x0, y0) for name, (x0, y0, frames) in self.squares.items()
                if frame in frames}


class SquaresDetector:
    name = "squares"

    def __init__(self, scene: Scene, with_masks: bool = False, extra: int = 0) -> None:
        self.scene, self.with_masks, self.extra, self.calls = scene, with_masks, extra, []

    def detect(self, frame_rgb, phrases, threshold):
        frame = int(frame_rgb[0, 0, 0])  # the test clip writes its frame number there
        self.calls.append(frame)
        found = []
        for mask in self.scene.masks(frame).values():
            box = tuple(float(v) for v in mask_box(mask))
            found.append(FrameDetection(box, 0.9, phrases[0], mask if self.with_masks else None))
        for i in range(self.extra):  # many small distinct things
            box = (float(i % 70), float(2 * (i // 70)), float(i % 70 + 1), float(2 * (i // 70) + 1))
            found.append(FrameDetection(box, 0.5, phrases[0]))
        return found


class GroundTruthSession:
    """The session calls ``TextTracker`` makes, answered from the scene (a perfect tracker)."""

    def __init__(self, video, scene: Scene) -> None:
        self.video, self.scene = video, scene
        self.objects: dict[int, str] = {}  # object id -> square name
        self.removed: list[int] = []

    @property
    def object_ids(self):
        return list(self.objects)

    def add_prompts(self, frame, object_id, prompts):
        truth = self.scene.masks(frame)
        name = max(truth, key=lambda n: box_iou(prompts.box, mask_box(truth[n])), default=None)
        if name is None or box_iou(prompts.box, mask_box(truth[name])) < 0.5:
            name = f"nothing-{object_id}"
        self.objects[object_id] = name
        return truth.get(name, np.zeros(SIZE, bool))

    def propagate(self, start_frame=None, reverse=False, max_frames=None):
        truth = self.scene.masks(start_frame)
        yield start_frame, {obj: truth.get(name, np.zeros(SIZE, bool))
                            for obj, name in self.objects.items()}

    def remove_object(self, object_id):
        del self.objects[object_id]
        self.removed.append(object_id)


def clip(frames: int):
    arrays = []
    for i in range(frames):
        frame = np.zeros((*SIZE, 3), np.uint8)
        frame[0, 0, 0] = i
        arrays.append(frame)
    return open_video(arrays, fps=10)


def run(scene, frames=12, **params):
    video = clip(frames)
    session = GroundTruthSession(video, scene)
    detector = SquaresDetector(scene, with_masks=params.pop("with_masks", False),
                               extra=params.pop("extra", 0))
    tracker = TextTracker(session, detector, TextTrackParams(("dog",), **params))
    yielded = list(tracker.run())
    return tracker.result, session, detector, yielded


@pytest.mark.parametrize("with_masks", [False, True])
def test_a_steady_object_keeps_one_id_a_new_one_gets_the_next_an_absent_one_ends(with_masks):
    scene = Scene({"a": (2, 5, range(0, 7)), "b": (40, 30, range(4, 12))})
    result, session, detector, yielded = run(scene, re_detect_every=2, with_masks=with_masks)
    assert detector.calls == [0, 2, 4, 6, 8, 10]
    assert [(o.object_id, o.first_frame) for o in result.objects] == [(1, 0), (2, 4)]
    a, b = result.objects
    assert a.frames_matched == 3 and a.ended_at == 10  # found at 2, 4, 6; missed at 8 and 10
    assert session.removed == [1] and session.object_ids == [2]
    assert b.ended_at is None and b.frames_matched == 3  # found again at 6, 8, 10
    for frame in range(12):
        expected = scene.masks(frame)
        row = result.masks[frame] if frame in result.masks else {}
        if "a" in expected:
            np.testing.assert_array_equal(row[1], expected["a"])
        if "b" in expected and frame >= 4:
            np.testing.assert_array_equal(row[2], expected["b"])
        assert 1 not in row or frame < 10  # ended: no masks after it left
    assert [frame for frame, _ in yielded] == list(range(12)) == result.frames
    assert result.names() == {1: "dog 1", 2: "dog 2"}


def test_re_detection_interval_zero_or_huge_detects_on_the_first_frame_only():
    scene = Scene({"a": (2, 5, range(0, 12)), "b": (40, 30, range(3, 12))})
    for every in (0, 10**9):
        result, _, detector, _ = run(scene, re_detect_every=every)
        assert detector.calls == [0] and [o.object_id for o in result.objects] == [1]


def test_nothing_found_is_an_empty_successful_result():
    result, session, _, yielded = run(Scene({}), frames=4, re_detect_every=1)
    assert result.found_nothing and session.object_ids == [] and len(result.masks) == 0
    assert [masks for _, masks in yielded] == [{}, {}, {}, {}]


def test_the_per_frame_cap_and_the_object_cap_are_named_and_reported():
    result, _, _, _ = run(Scene({}), frames=1, extra=MAX_DETECTIONS_PER_FRAME + 10)
    assert result.capped_frames == [0] and len(result.objects) == MAX_DETECTIONS_PER_FRAME
    result, _, _, _ = run(Scene({}), frames=1, extra=5, max_objects=3)
    assert len(result.objects) == 3 and result.objects_refused == 2


def test_stopping_keeps_what_was_done():
    scene = Scene({"a": (2, 5, range(0, 12))})
    video = clip(12)
    tracker = TextTracker(GroundTruthSession(video, scene), SquaresDetector(scene),
                          TextTrackParams(("dog",), re_detect_every=2))
    frames = []
    for frame, _ in tracker.run(should_stop=lambda: len(frames) >= 5):
        frames.append(frame)
    assert frames == [0, 1, 2, 3, 4] and sorted(tracker.result.masks) == frames


@pytest.mark.parametrize("params, message", [
    (dict(phrases=()), "empty"),
    (dict(phrases=tuple(f"thing {i}" for i in range(500))), "limit"),
    (dict(threshold=1.5), r"\[0, 1\]"),
    (dict(threshold=-0.1), r"\[0, 1\]"),
    (dict(threshold="high"), "number"),
    (dict(re_detect_every=-1), "re_detect_every"),
    (dict(re_detect_every=2.5), "re_detect_every"),
    (dict(max_detections=MAX_DETECTIONS_PER_FRAME + 1), "max_detections"),
    (dict(match_iou=0.0), "match_iou"),
])
def test_bad_parameters_say_what_is_wrong(params, message):
    values = {"phrases": ("dog",), **params}
    with pytest.raises(PromptError, match=message):
        TextTrackParams(**values)


# -- the real session (random-weight SAM 2.1) and the real OWLv2 detector --------------------

@pytest.fixture(scope="module")
def real_session(tmp_path_factory):
    from test_video_tracker import VIDEO_OVERRIDES, write_video_checkpoint

    from sam_backends.testing.random_models import small_sam2_spec
    from sam_backends.video import create_tracker

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("text-track")
    spec = small_sam2_spec("test-sam2-text-video", extra_overrides=VIDEO_OVERRIDES)
    tracker = create_tracker(spec, checkpoint=write_video_checkpoint(spec, folder / "v.pt"),
                             device="cpu", precision="fp32")
    return tracker


def test_the_loop_runs_on_a_real_session_and_clicks_still_correct(real_session):
    scene = Scene({"a": (2, 5, range(0, 4)), "b": (40, 30, range(2, 4))})
    video = clip(4)
    session = real_session.start(video)
    tracker = TextTracker(session, SquaresDetector(scene), TextTrackParams(("dog",),
                                                                          re_detect_every=2))
    for frame, masks in tracker.run():
        for mask in masks.values():
            assert mask.shape == SIZE and mask.dtype == bool
    ids = [o.object_id for o in tracker.result.objects]
    assert ids[:1] == [1] and set(session.object_ids) == {
        o.object_id for o in tracker.result.objects if o.ended_at is None}
    assert set(tracker.result.masks[3]) == set(session.object_ids)
    # A click corrects object 1 on frame 1; tracking from there works as for a clicked track.
    from sam_backends.types import Prompts

    corrected = session.add_prompts(1, 1, Prompts(points=[(8.0, 10.0)], labels=[1]))
    assert corrected.shape == SIZE
    assert [frame for frame, _ in session.propagate(1)] == [1, 2, 3]


def test_owlv2_boxes_feed_the_loop(real_session, tmp_path):
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text.detectors import load_owlv2
    from sam_backends.video.text_tracking import Owlv2FrameDetector

    owl = load_owlv2(write_random_owlv2(tmp_path / "owl", small_owlv2_config()), "cpu", "fp32")
    video = clip(2)
    session = real_session.start(video)
    params = TextTrackParams(("dog", "cat"), threshold=0.0, re_detect_every=1, max_objects=2)
    tracker = TextTracker(session, Owlv2FrameDetector(owl), params)
    list(tracker.run())
    result = tracker.result
    assert result.detection_frames == [0, 1]
    assert len(result.objects) == 2 and result.objects_refused > 0  # threshold 0: every box
    assert all(o.phrase in ("dog", "cat") for o in result.objects)
    for obj in result.objects:
        assert obj.first_frame in (0, 1) and 0.0 <= obj.score <= 1.0


def test_the_loop_adds_objects_mid_clip_on_an_edgetam_session(edgetam_small):
    """EdgeTAM's session (transformers' inference session) takes a new object after tracking
    has started, as SAM 2.1's does: the words loop needs nothing else of a session."""
    from sam_backends.video import create_tracker

    tracker = create_tracker("edgetam", checkpoint=edgetam_small, device="cpu", precision="fp32")
    scene = Scene({"a": (2, 5, range(0, 4)), "b": (40, 30, range(2, 4))})
    session = tracker.start(clip(4))
    run = TextTracker(session, SquaresDetector(scene), TextTrackParams(("dog",),
                                                                      re_detect_every=2))
    frames = [frame for frame, _ in run.run()]
    assert frames == [0, 1, 2, 3]
    first_frames = {o.object_id: o.first_frame for o in run.result.objects}
    assert first_frames[1] == 0 and 2 in first_frames.values()  # "b" is new on frame 2
    for obj in run.result.objects:
        if obj.ended_at is None:
            assert obj.object_id in session.object_ids
            assert run.result.masks[3][obj.object_id].shape == SIZE
