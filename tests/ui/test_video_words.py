"""The Video view's "Find by words" (``ui.video.words``): the words become the tab's objects,
named after the phrase and prompted with their box, tracked on every frame; nothing found says
so; bad input leaves the tab as it was. OWLv2 with random weights finds arbitrary boxes, so
the assertions are about what the view does with what was found, not where it is."""

from __future__ import annotations

import pytest
from app_harness import app_config
from test_video_ui import event, make_clip, no_progress, request

from sam_backends.registry import OWLV2_ID
from sam_backends.testing.text_models import (
    small_owlv2_config,
    small_sam3_video_config,
    write_random_owlv2,
    write_random_sam3,
)
from ui.video.handlers import VideoHandlers
from ui.video.words import WordsHandlers


@pytest.fixture(scope="module")
def ctx(sam1_small, sam2_small, tmp_path_factory):
    from app import prepare_environment
    from workbench.context import AppContext

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    write_random_owlv2(checkpoints / OWLV2_ID, small_owlv2_config(image_size=32))  # 4 boxes
    # SAM 3 offered and present (low thresholds: random weights find something)
    write_random_sam3(checkpoints / "sam3", small_sam3_video_config(
        score_threshold_detection=0.1, new_det_thresh=0.1, hotstart_delay=1,
        hotstart_unmatch_thresh=1, hotstart_dup_thresh=1), seed=1)
    config = app_config(sam1_small, sam2_small, checkpoints, models=("grabcut", "sam3"),
                        temp_dir=tmp_path_factory.mktemp("temp"), video_max_frames=20)
    context = AppContext(config, prepare_environment(config))
    yield context
    context.close()


@pytest.fixture(scope="module")
def handlers(ctx):
    return VideoHandlers(ctx)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "square.mp4", frames=4)


def opened(handlers, clip, name):
    return handlers.upload(None, str(clip), 1, 0, 0, 0, request(name))[0]


def test_found_objects_become_the_tabs_objects(handlers, clip):
    session = opened(handlers, clip, "words")
    views = list(WordsHandlers(handlers).find(session, "square", "owlv2", 0.0, 2,
                                              request("words"), no_progress))
    assert len(views) == 4 + 1  # one view per frame, then the summary
    found = [o for o in session.objects if not o.is_empty]
    assert found and all(o.name.startswith("square ") for o in found)
    for obj in found:
        (frame, prompts), = obj.prompts
        assert frame in (0, 2) and prompts.box is not None and not prompts.points
    tracked = {obj for frame in session.track for obj in session.track[frame]}
    assert tracked == {o.object_id for o in found}
    assert "Found" in views[-1][-1] and "square" in views[-1][-1]
    # a click still corrects a found object: the engine knows every one of them
    assert set(session.engine.object_ids) <= {o.object_id for o in found}


def test_sam3_video_finds_tracks_and_clicks_still_correct(handlers, clip):
    """SAM 3's own video model fills the tab; its objects join the tab's tracker at the next
    click (the tracker's session is rebuilt with each one's box on its first frame)."""
    session = opened(handlers, clip, "sam3v")
    views = list(WordsHandlers(handlers).find(session, "square", "sam3-video", 0.1, 0,
                                              request("sam3v"), no_progress))
    found = [o for o in session.objects if not o.is_empty]
    assert found, views[-1][-1]
    assert all(o.name.startswith("square ") for o in found) and "Found" in views[-1][-1]
    tracked = {obj for frame in session.track for obj in session.track[frame]}
    assert tracked == {o.object_id for o in found} and session.engine_stale
    first = found[0]
    (frame, prompts), = first.prompts
    session.select(first.object_id)
    session.frame = frame
    handlers.point(session, "Foreground (object)", event({"x": 20, "y": 30}), request("sam3v"))
    assert not session.engine_stale
    assert sorted(session.engine.object_ids) == sorted(o.object_id for o in found)
    assert len(session.active.on(frame).points) == 1 and session.active.on(frame).box == \
        prompts.box


def test_nothing_found_says_so_and_adds_nothing(handlers, clip):
    session = opened(handlers, clip, "nothing")
    views = list(WordsHandlers(handlers).find(session, "square", "owlv2", 1.0, 0,
                                              request("nothing"), no_progress))
    assert "Nothing matched" in views[-1][-1]
    assert all(o.is_empty for o in session.objects) and len(session.track) == 0


@pytest.mark.parametrize("text, threshold, every", [
    ("", 0.3, 2), ("square", 1.5, 2), ("square", 0.3, 2.5), ("square", 0.3, -1),
])
def test_bad_input_leaves_the_tab_as_it_was(handlers, clip, text, threshold, every):
    session = opened(handlers, clip, "bad")
    views = list(WordsHandlers(handlers).find(session, text, "auto", threshold, every,
                                              request("bad"), no_progress))
    assert len(views) == 1 and all(o.is_empty for o in session.objects)
