"""The Video view's timeline data (``workbench.video.timeline``), built from a real
``VideoSession`` through its own API: a clip of 8 small frames, prompts set as the page sets them
(``set_prompts`` before the prompt's mask goes into the track) and tracked masks put in ``track``
as tracking does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam_backends.masks import encode_rle, rle_area
from sam_backends.video import open_video
from workbench.drawing import SPEC
from workbench.objects import PromptSet
from workbench.video.state import Clip, Selection, VideoSession
from workbench.video.timeline import Timeline, TimelineRow, build_timeline, runs

H, W, FRAMES = 16, 24, 8


def seen(frame: int) -> np.ndarray:
    """A 4 x 4 square, moving right one pixel per frame."""
    mask = np.zeros((H, W), bool)
    mask[4:8, 2 + frame:6 + frame] = True
    return mask


def nothing() -> np.ndarray:
    return np.zeros((H, W), bool)


@pytest.fixture
def session() -> VideoSession:
    frames = [np.full((H, W, 3), 10 * i, np.uint8) for i in range(FRAMES)]
    session = VideoSession("timeline-video", "test-model")
    session.set_clip(Clip(open_video(frames, fps=10), "clip.mp4", Path("clip.mp4"), Selection()))
    return session


def click(session: VideoSession, object_id: int, frame: int, mask: np.ndarray) -> None:
    """What ``VideoHandlers._prompt`` does: record the prompt, then store its mask."""
    prompts = session.get(object_id).on(frame).with_point(3.0, 5.0, 1)
    session.set_prompts(object_id, frame, prompts)
    session.track.set(frame, object_id, mask)


def row(timeline: Timeline, object_id: int) -> TimelineRow:
    return next(r for r in timeline.rows if r.object_id == object_id)


def test_runs_are_half_open_and_sorted():
    assert runs([]) == ()
    assert runs([5, 0, 1, 2, 2]) == ((0, 3), (5, 6))
    assert runs(range(4, 9)) == ((4, 9),)
    assert runs([1, 3, 5]) == ((1, 2), (3, 4), (5, 6))


def test_rle_area_reads_the_runs():
    assert rle_area(encode_rle(seen(0))) == 16
    assert rle_area(encode_rle(nothing())) == 0


def test_a_new_clip_has_an_empty_timeline(session):
    timeline = build_timeline(session)
    assert timeline == Timeline(frames=FRAMES, current=0, rows=())  # the blank "Object 1"
    assert build_timeline(VideoSession("no-clip-video", "m")) == Timeline()


def test_an_object_that_ends_and_one_prompted_on_a_later_frame(session):
    # object 1: a click on frame 0, tracked to the end, seen on frames 0-4 only (it leaves)
    click(session, 1, 0, seen(0))
    for frame in range(1, FRAMES):
        session.track.set(frame, 1, seen(frame) if frame <= 4 else nothing())
    # object 2: a box on frame 5 (untracked there: a prompt, not a correction), tracked 5-7
    second = session.new_object("dog")
    session.set_prompts(second.object_id, 5, PromptSet(box=(1, 1, 9, 9)))
    for frame in (5, 6, 7):
        session.track.set(frame, second.object_id, seen(frame - 4))
    session.frame = 6

    timeline = build_timeline(session)
    assert timeline.frames == FRAMES and timeline.current == 6
    assert [r.object_id for r in timeline.rows] == [1, 2]
    first = row(timeline, 1)
    assert first.name == "Object 1" and first.colour == SPEC.hex_for(1)
    assert first.tracked == ((0, 8),)
    assert first.present == ((0, 5),)  # ends after frame 4
    assert first.prompted == (0,) and first.corrected == ()
    dog = row(timeline, 2)
    assert dog.name == "dog" and dog.colour == SPEC.hex_for(2) and dog.active
    assert dog.tracked == dog.present == ((5, 8),)
    assert dog.prompted == (5,) and dog.corrected == ()
    assert not first.active


def test_a_click_on_a_tracked_frame_is_a_correction(session):
    click(session, 1, 0, seen(0))
    for frame in range(1, FRAMES):
        session.track.set(frame, 1, seen(frame) if frame < 3 else nothing())  # lost at 3
    click(session, 1, 3, seen(3))  # the person brings it back on frame 3
    click(session, 1, 3, seen(3))  # a second click there refines the same correction
    click(session, 1, 0, seen(0))  # more clicks on the first prompt's frame: not a correction

    first = row(build_timeline(session), 1)
    assert first.prompted == (0, 3) and first.corrected == (3,)
    assert first.present == ((0, 4),)  # 0-2 tracked, 3 corrected; 4-7 still lost

    session.track.set(5, 1, seen(5))  # tracking again finds it on 5 too
    assert row(build_timeline(session), 1).present == ((0, 4), (5, 6))

    session.undo()  # the second click on frame 0
    session.undo()
    assert row(build_timeline(session), 1).corrected == (3,)  # one click left there: still one
    session.undo()  # both clicks on frame 3 are undone: the frame is neither prompted...
    first = row(build_timeline(session), 1)
    assert first.prompted == (0,) and first.corrected == ()  # ...nor corrected


def test_removing_an_object_and_opening_a_clip_empty_its_rows(session):
    click(session, 1, 0, seen(0))
    second = session.new_object()
    click(session, second.object_id, 2, seen(2))
    assert [r.object_id for r in build_timeline(session).rows] == [1, second.object_id]

    session.delete(1)
    timeline = build_timeline(session)
    assert [r.object_id for r in timeline.rows] == [second.object_id]
    assert timeline.rows[0].present == ((2, 3),)

    session.set_clip(session.clip)
    assert build_timeline(session).rows == ()


def test_the_value_is_plain_json(session):
    session.rename(1, "<b>cat</b>")
    click(session, 1, 1, seen(1))
    value = build_timeline(session).as_value()
    assert value == {"frames": FRAMES, "current": 0, "rows": [{
        "id": 1, "name": "<b>cat</b>", "color": SPEC.hex_for(1), "tracked": [[1, 2]],
        "present": [[1, 2]], "prompted": [1], "corrected": [], "active": True}]}
