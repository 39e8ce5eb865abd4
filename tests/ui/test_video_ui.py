"""The video view's state, values and handlers, with tiny synthetic clips made with PyAV in
tmp_path and the reduced-size random SAM 2.1 checkpoint (``sam2_small``), on the CPU in fp32.

Clips here are a few frames of 96 x 64 (tracking costs about one model step per frame, so the
frame count, not the size, sets the time). ``make_clip`` is also used by the API and browser
tests.
"""

from __future__ import annotations

import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from app_harness import app_config

from sam_backends.video import MaskTrack, VideoLimitError
from ui.video.handlers import TRACK_ALL, TRACK_FROM_HERE, VideoHandlers, selection
from workbench.estimates import RunEstimate, duration_text
from workbench.objects import PromptSet
from workbench.video import values
from workbench.video.services import auto_stride
from workbench.video.state import Selection, VideoSession, frame_iou, mask_iou

W, H = 96, 64


def draw(index: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame ``index``: a grey background and a red 24 x 24 square moving 4 px per frame."""
    frame = np.full((height, width, 3), 90, np.uint8)
    x = 10 + 4 * index
    frame[20:44, x:x + 24] = (220, 40, 40)
    return frame


def make_clip(path: Path, frames: int = 4, fps: int = 10, width: int = W, height: int = H,
              audio: bool = False) -> Path:
    """An H.264 MP4 of ``frames`` frames of ``draw`` (optionally with a silent audio track)."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(draw(index, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.zeros((1, 16000 * frames // fps), np.float32)
            chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in sound.encode(chunk):
                container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def request(name: str = "tab") -> types.SimpleNamespace:
    return types.SimpleNamespace(session_hash=name)


def event(data: dict) -> types.SimpleNamespace:
    return types.SimpleNamespace(_data=data)


def no_progress(*_args, **_kwargs) -> None:
    return None


@pytest.fixture(scope="module")
def ctx(sam1_small, sam2_small, tmp_path_factory):
    from app import prepare_environment
    from workbench.context import AppContext

    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        temp_dir=tmp_path_factory.mktemp("temp"), video_max_frames=20)
    context = AppContext(config, prepare_environment(config))
    yield context
    context.close()


@pytest.fixture(scope="module")
def handlers(ctx):
    return VideoHandlers(ctx)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "square.mp4")


def open_clip(handlers, clip, name="tab", stride=1, max_frames=0):
    view = handlers.upload(None, str(clip), stride, 0, 0, max_frames, request(name))
    return view[0], view


# --- pure state and values ----------------------------------------------------------------


def test_objects_prompts_and_undo_are_values():
    session = VideoSession("s-video", "test-sam2-small")
    first = session.active
    assert first.name == "Object 1" and first.is_empty
    assert session.new_object() is first  # an empty active object is reused
    session.set_prompts(1, 3, PromptSet().with_point(5, 6, 1))
    session.set_prompts(1, 3, session.active.on(3).with_box((1, 2, 30, 20)))
    second = session.new_object("dog")
    session.set_prompts(second.object_id, 0, PromptSet().with_point(1, 1, 0))
    assert [(f, o) for f, o, _ in session.prompted()] == [(0, 2), (3, 1)]
    assert session.prompted_frames == [0, 3] and session.tracked_ids == [1, 2]
    edit = session.undo()
    assert edit.object_id == 2 and edit.before.is_empty
    assert session.get(2).is_empty
    edit = session.undo()
    assert edit.after.box is not None and session.get(1).on(3).box is None
    session.rename(1, "  red   square ")
    assert session.get(1).name == "red square"
    session.delete(1)
    assert [o.object_id for o in session.objects] == [2] and session.active_id == 2


def test_api_objects_keep_their_ids():
    session = VideoSession("api", "m")
    session.add_object(7, "cat")
    session.add_object(3)
    assert [(o.object_id, o.name) for o in session.objects] == [(7, "cat"), (3, "Object 3")]
    assert session.next_id == 8


def test_job_stop_closes_the_engine_iterator_and_frees_the_session():
    session = VideoSession("j", "m")
    closed = []

    def frames():
        try:
            for i in range(100):
                yield i
        finally:
            closed.append(True)

    job = session.begin_job("tracking")
    with pytest.raises(Exception, match="running"):
        session.begin_job("tracking")
    seen = []
    for item in job.steps(frames()):
        seen.append(item)
        if item == 2:
            assert session.stop()
    assert seen == [0, 1, 2] and session.busy  # stopped; the handler's finally finishes it
    job.finish()
    assert closed == [True] and not session.busy and session.job is None
    assert not session.stop()
    # a session being released finishes a job whose handler will not run again
    job = session.begin_job("tracking")
    closed.clear()
    for item in job.steps(frames()):
        break
    session.release()
    assert closed == [True] and session.job is None


def test_job_steps_run_on_one_thread_of_the_job_that_ends_with_it():
    """Every step (``around`` included) runs on the job's own thread, whichever thread
    advances the loop (Gradio takes any free worker for each step), and that thread ends when
    the loop does, taking its OpenMP pool with it (``workbench.threads``)."""
    import threading
    from contextlib import contextmanager

    session = VideoSession("t", "m")
    ran, entered = [], []

    def frames():
        for i in range(6):
            ran.append(threading.current_thread())
            yield i

    @contextmanager
    def around():
        entered.append(threading.current_thread())
        yield

    job = session.begin_job("tracking")
    loop = job.steps(frames(), around=around)
    callers = []
    for _ in range(6):  # each step advanced from a thread of its own
        caller = threading.Thread(target=lambda: callers.append(
            (threading.current_thread(), next(loop))))
        caller.start()
        caller.join(10)
    assert [item for _, item in callers] == list(range(6))
    assert len({thread for thread, _ in callers}) == 6
    assert len(set(ran)) == 1 and entered == ran  # one step thread, around() on it too
    step_thread = ran[0]
    assert step_thread.name.startswith("samwb-track")
    assert step_thread not in {thread for thread, _ in callers}
    assert list(loop) == [] and not step_thread.is_alive()  # ends with the loop
    job.finish()
    job = session.begin_job("tracking")  # an error in a step comes out of the loop
    with pytest.raises(ZeroDivisionError):
        for _ in job.steps(iter(lambda: 1 / 0, None)):
            pass
    job.finish()


def test_iou_between_tracks():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0 and mask_iou(None, None) == 1.0
    a[:2] = True
    assert mask_iou(a, b) == 0.0
    b[:1] = True
    assert mask_iou(a, b) == pytest.approx(0.5)
    track_a, track_b = MaskTrack((4, 4)), MaskTrack((4, 4))
    track_a.set(0, 1, a)
    track_b.set(0, 1, b)
    assert frame_iou(track_a, track_b, 0, [1]) == pytest.approx(0.5)
    assert frame_iou(track_a, track_b, 1, [1]) is None


def test_text_values():
    clock = iter([0.0, 0.0, 2.5]).__next__
    run = RunEstimate(10, clock=clock)
    run.start()
    assert values.progress_text(run) == ("Tracking: 0/10 frames · time left: known after the "
                                         "first frames")
    run.step(5)
    assert values.progress_text(run) == ("Tracking: 5/10 frames · about 2.5 s left (500 ms a "
                                         "frame, measured in this run)")
    assert values.progress_text(run, "Model A", 2, 5).startswith("Model A: 2/5 frames · ")
    assert duration_text(89) == "89 s" and duration_text(3725) == "1 h 02 min"
    assert values._every(1) == "every frame" and values._every(12) == "every 12th frame"
    assert values._every(22) == "every 22nd frame"
    assert "Stopped after 3 frames" in values.run_summary(
        {"frames": 3, "seconds": 1.5, "stopped": True, "model": "m"})
    assert auto_stride(30.0) == 6 and auto_stride(24.0) == 5 and auto_stride(float("nan")) == 1
    assert selection(0, 1, 0, 0) == Selection(0, 1.0, None, None)
    with pytest.raises(Exception, match="later than start"):
        selection(1, 5, 2, 0)
    with pytest.raises(Exception, match="0 or more"):
        selection(-1, 0, 0, 0)
    for args in ((0, 1e308, 0, 0), (0, 0, 1e308, 0), (10**9, 0, 0, 0), (0, 0, 0, 1e12),
                 (0, "1e999", 0, 0)):  # refused before the probe, naming the field
        with pytest.raises(Exception, match="must be at most|must be 0 or more"):
            selection(*args)


# --- handlers with the random-weight model --------------------------------------------------


def test_upload_shows_the_first_frame_and_the_selection(handlers, clip):
    session, view = open_clip(handlers, clip, "upload")
    assert session.video.num_frames == 4 and session.frame == 0
    canvas = view[1]
    assert canvas["src"].startswith("data:image/jpeg;base64,") and (canvas["w"], canvas["h"]) \
        == (W, H)
    assert "processing **4 frames**" in view[4] and "96×64" in view[4]
    assert view[2]["maximum"] == 3 and view[2]["interactive"] is True
    # the session keeps its own copy of the file (Gradio sweeps its uploads)
    assert session.clip.path != clip and session.clip.path.is_file()
    view = handlers.scrub(session, 2, request("upload"))
    assert session.frame == 2 and "Frame **2** of 3" in view[3]
    # the automatic stride brings 10 fps to about 5 fps
    view = handlers.reselect(session, 0, 0, 0, 0, request("upload"))
    assert session.clip.selection.stride == 2 and session.video.num_frames == 2
    session.release()
    assert session.clip is None


def test_limits_are_checked_before_decoding(ctx, clip, tmp_path):
    import dataclasses

    from workbench.video.services import VideoServices

    small = dataclasses.replace(ctx.config, video_max_frames=3, video_max_pixels=5000)
    services = VideoServices(types.SimpleNamespace(config=small))
    with pytest.raises(VideoLimitError, match="more than the limit"):
        services.open(clip, Selection(1, 0.0, None, None))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(Exception, match="empty"):
        VideoServices(types.SimpleNamespace(config=ctx.config)).open(
            empty, Selection(1, 0.0, None, None))


def test_click_track_stop_correct_and_retrack(handlers, clip):
    session, _ = open_clip(handlers, clip, "track")
    view = handlers.box(session, event({"box": [8, 18, 36, 46]}), request("track"))
    assert session.track.rle(0, 1) is not None and session.active.on(0).box == (8, 18, 36, 46)
    assert view[1]["box"] == [8, 18, 36, 46]
    handlers.point(session, "Foreground (object)", event({"x": 20, "y": 30}), request("track"))
    assert len(session.active.on(0).points) == 1
    # Track: a view per frame, then the final one
    views = list(handlers.track(session, TRACK_ALL, request("track"), no_progress))
    assert len(views) == 5 and sorted(session.track) == [0, 1, 2, 3]
    assert "Tracked 4 frames" in views[-1][-1]
    assert not session.busy
    timeline = views[-1][6]  # one row: tracked on every frame, prompted on 0
    assert timeline["frames"] == 4 and [row["id"] for row in timeline["rows"]] == [1]
    assert timeline["rows"][0]["tracked"] == [[0, 4]] and timeline["rows"][0]["prompted"] == [0]
    # a click on the timeline moves the view as the Frame slider does
    view = handlers.seek(session, event({"frame": 3}), request("track"))
    assert session.frame == 3 and view[2]["value"] == 3 and view[6]["current"] == 3
    # Stop after the first frame: the rest is not tracked, the session is free again
    session.set_prompts(1, 2, PromptSet().with_point(30, 30, 1))
    view = handlers.scrub(session, 2, request("track"))
    assert view[6]["rows"][0]["corrected"] == [2]  # a prompt on a tracked frame
    handlers.point(session, "Background (not object)", event({"x": 80, "y": 5}),
                   request("track"))
    frames = handlers.track(session, TRACK_FROM_HERE, request("track"), no_progress)
    next(frames)
    session.stop()  # what the Stop button does before waiting for the job to end
    rest = list(frames)
    assert session.last_run["stopped"] and session.last_run["frames"] == 1 and len(rest) == 1
    assert not session.busy
    assert "Nothing is running" in handlers.stop(session)[-1]
    # undo goes back through the engine; clear removes the frame's prompts
    handlers.undo(session, request("track"))
    assert session.active.on(2).labels == (1,)
    handlers.clear(session, request("track"))
    assert session.active.on(2).is_empty and session.track.rle(3, 1) is None
    session.release()


def test_clicks_are_refused_while_tracking(handlers, clip):
    session, _ = open_clip(handlers, clip, "busy")
    handlers.box(session, event({"box": [8, 18, 36, 46]}), request("busy"))
    frames = handlers.track(session, TRACK_ALL, request("busy"), no_progress)
    next(frames)
    before = session.active.on(0)
    handlers.point(session, "Foreground (object)", event({"x": 50, "y": 30}), request("busy"))
    assert session.active.on(0) == before  # refused with a toast, view unchanged
    frames.close()  # what Gradio does on cancel
    assert not session.busy
    session.release()


def test_bad_events_and_models(handlers, clip):
    session, _ = open_clip(handlers, clip, "bad")
    view = handlers.point(session, "Foreground (object)", event({"x": "abc"}), request("bad"))
    assert view[0] is session and session.active.is_empty
    view = handlers.box(session, event({"box": [0, 0, 500, 500]}), request("bad"))
    assert session.active.is_empty  # outside the frame: refused
    handlers.change_model(session, "grabcut", request("bad"))
    assert session.model_id == "test-sam2-small"
    handlers.box(session, event({"box": [8, 18, 36, 46]}), request("bad"))
    views = list(handlers.compare(session, "test-sam2-small", "test-sam2-small",
                                  request("bad"), no_progress))
    assert len(views) == 1 and session.compare is None  # refused: the same model twice
    views = list(handlers.compare(session, "test-sam2-small", "sam2.1-tiny", request("bad"),
                                  no_progress))  # sam2.1-tiny's weights are absent here
    assert not session.busy and "not run yet" in views[-1][5]
    session.release()


def test_exports_write_playable_h264_and_masks(handlers, tmp_path):
    import json
    import zipfile

    import av

    from ui.video.exports import CHEQUERED, parse_colour, write_all

    clip = make_clip(tmp_path / "with sound.mp4", frames=3, audio=True)
    session, _ = open_clip(handlers, clip, "exports")
    assert session.video.audio_stream is not None
    square = np.zeros((H, W), bool)
    square[20:44, 10:34] = True
    for frame in range(3):  # masks as test input; the app's masks come from the tracker
        session.track.set(frame, 1, np.roll(square, 4 * frame, axis=1))
    session.rename(1, "square")
    folder = tmp_path / "out"
    folder.mkdir()
    files = write_all(session, folder, True, CHEQUERED, parse_colour("rgba(0, 177, 64, 1)"))
    assert {p.name for p in files.values()} == {
        "with_sound_overlay.mp4", "with_sound_cutout.mp4", "with_sound_masks.zip",
        "with_sound_coco_rle.json"}
    with av.open(str(files["overlay"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 3
    head = files["overlay"].read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # faststart
    with zipfile.ZipFile(files["masks"]) as archive:
        assert len(archive.namelist()) == 3
    document = json.loads(files["coco"].read_text())
    assert document["objects"] == [{"id": 1, "name": "square", "category_id": 1}]
    assert [image["frame_index"] for image in document["images"]] == [0, 1, 2]
    assert parse_colour("#0f0") == (0, 255, 0)
    with pytest.raises(Exception, match="not understood"):
        parse_colour("green-ish")
    session.release()


def test_the_example_clip_is_made_by_the_project_and_opens(ctx):
    from ui.video.view import EXAMPLE_NAME
    from workbench.config import ASSETS_DIR

    example = ASSETS_DIR / EXAMPLE_NAME
    assert example.is_file() and example.stat().st_size < 300_000
    handlers = VideoHandlers(ctx, example)
    view = handlers.open_example(None, 0, 0, 0, 0, request("example"))
    session = view[0]
    assert session.video.size == (360, 640) and session.video.source_fps == pytest.approx(24)
    assert session.clip.selection.stride == 5 and session.video.num_frames == 15
    assert "every 5th frame" in view[4]
    session.release()


# --- compare two models on one clip -------------------------------------------------------


@pytest.fixture(scope="module")
def second_sam2(random_checkpoint_dir, sam2_small):
    """A second reduced SAM 2.1 (other random weights) so the two compared tracks differ.
    (``RandomCheckpoint`` is taken from a fixture's value: ``from conftest import`` would pick
    whichever conftest module pytest loaded last.)"""
    RandomCheckpoint = type(sam2_small)

    from sam_backends.testing.random_models import small_sam2_spec, write_random_checkpoint

    spec = small_sam2_spec("test-sam2-small-b")
    path = write_random_checkpoint(spec, random_checkpoint_dir / spec.checkpoint_file, seed=1)
    return RandomCheckpoint(spec, path)


@pytest.fixture(scope="module")
def compare_handlers(sam1_small, sam2_small, second_sam2, tmp_path_factory):
    from app import prepare_environment
    from workbench.config import ExtraModel
    from workbench.context import AppContext

    extra = (ExtraModel(sam2_small.spec, sam2_small.path),
             ExtraModel(second_sam2.spec, second_sam2.path))
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        temp_dir=tmp_path_factory.mktemp("temp"), video_max_frames=20,
                        extra_models=extra)
    context = AppContext(config, prepare_environment(config))
    yield VideoHandlers(context)
    context.close()


def tracked_alone(model, clip, box, point_frame, point):
    """What one model's own tracker gives for the compare test's prompts (no app involved)."""
    from sam_backends import Prompts
    from sam_backends.video import create_tracker, open_video

    tracker = create_tracker(model.spec, checkpoint=model.path, device="cpu", precision="fp32")
    engine = tracker.start(open_video(clip))
    engine.add_prompts(0, 1, Prompts(box=box))
    engine.add_prompts(point_frame, 2, Prompts(points=(point,), labels=(1,)))
    return dict(engine.propagate_both(start_frame=0))


@pytest.mark.slow  # 4 tracking runs (about 2 minutes); the default run keeps the stopped
# compare below and the browser's compare on a clip
def test_compare_tracks_the_same_prompts_with_both_models(compare_handlers, clip, sam2_small,
                                                          second_sam2):
    h, name = compare_handlers, "compare"
    session, _ = open_clip(h, clip, name)
    h.box(session, event({"box": [8, 18, 36, 46]}), request(name))
    second = session.new_object()  # a second object, first prompted on frame 2
    assert second.object_id == 2
    session.set_prompts(2, 2, PromptSet().with_point(30, 30, 1))
    views = list(h.compare(session, sam2_small.spec.model_id, second_sam2.spec.model_id,
                           request(name), no_progress))
    run = session.compare
    assert run is not None and run.finished and run.frames_done == [4, 4]
    assert len(views) == 4 + 4 + 1  # a view per frame per model, then the final one
    # each side is exactly what that model's own tracker gives for the same prompts
    alone = [tracked_alone(m, clip, (8, 18, 36, 46), 2, (30, 30))
             for m in (sam2_small, second_sam2)]
    for which in range(2):
        for frame in range(4):
            for object_id in (1, 2):
                np.testing.assert_array_equal(run.tracks[which].get_mask(frame, object_id),
                                              alone[which][frame][object_id])
    # the IoU curve: one value per frame, the mean over both objects
    assert sorted(run.ious) == [0, 1, 2, 3]
    for frame in range(4):
        expected = np.mean([mask_iou(alone[0][frame][o], alone[1][frame][o]) for o in (1, 2)])
        assert run.ious[frame] == pytest.approx(expected)
    assert min(run.ious.values()) < 1.0  # other weights, other masks: the curve says so
    # the final view: both models drawn on the first prompted frame, their speeds and the IoU
    _, image_a, image_b, slider, table, text = views[-1]
    assert image_a.shape == image_b.shape == (H, W, 3) and not np.array_equal(image_a, image_b)
    assert list(table["frame"]) == [0, 1, 2, 3] and slider["maximum"] == 3
    assert text.count("frames/s") == 2 and "IoU between them: mean" in text
    assert "stopped early" not in text and not session.busy
    # the frame slider shows both results on another frame
    moved = h.compare_frame(session, 3)
    assert not np.array_equal(moved[1], image_a) and moved[3]["value"] == 3
    session.release()


def test_a_stopped_compare_says_so_and_frees_the_session(compare_handlers, clip, sam2_small,
                                                          second_sam2):
    h, name = compare_handlers, "compare-stop"
    session, _ = open_clip(h, clip, name)
    h.box(session, event({"box": [8, 18, 36, 46]}), request(name))
    views = h.compare(session, sam2_small.spec.model_id, second_sam2.spec.model_id,
                      request(name), no_progress)
    next(views)
    session.stop()
    rest = list(views)
    run = session.compare
    assert not run.finished and run.frames_done[0] == 1 and run.frames_done[1] == 0
    assert "(stopped early)" in rest[-1][5] and not session.busy
    session.release()


def test_pause_wins_over_a_tick_already_on_its_way(handlers, clip):
    session, _ = open_clip(handlers, clip, "play")
    timer = handlers.play(session)
    assert timer.active and timer.value == pytest.approx(0.2)  # 10 fps clip, at most 5 ticks/s
    view = handlers.tick(session, request("play"))
    assert session.frame == 1 and view[1]["value"] == 1 and view[3].active
    handlers.pause(session)
    view = handlers.tick(session, request("play"))  # the tick that was in flight
    assert session.frame == 1 and not view[3].active
    handlers.play(session)
    for _ in range(5):
        view = handlers.tick(session, request("play"))
    assert session.frame == 3 and not view[3].active and not session.playing  # stops at the end
    session.release()
