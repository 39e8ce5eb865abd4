"""The Video view with EdgeTAM: proposed (and why) on a CPU without native bf16, tracked by the
page's handlers, and compared beside a SAM 2.1 model. The reduced random EdgeTAM folder
(``edgetam_small``) sits in the app's checkpoints folder as ``edgetam/``, as a download
would put it; ``sam2_small`` is the SAM 2.1 side.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from app_harness import app_config
from test_video_ui import event, make_clip, no_progress, open_clip, request

from sam_backends.speed import accel
from ui.video.handlers import VideoHandlers
from ui.video.view import proposal_markdown


@pytest.fixture(scope="module")
def handlers(sam1_small, sam2_small, edgetam_small, tmp_path_factory):
    from app import prepare_environment
    from workbench.context import AppContext

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    shutil.copytree(edgetam_small, checkpoints / "edgetam")
    config = app_config(sam1_small, sam2_small, checkpoints, models=("grabcut", "edgetam"),
                        temp_dir=tmp_path_factory.mktemp("temp"), video_max_frames=20)
    context = AppContext(config, prepare_environment(config))
    yield VideoHandlers(context)
    context.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "square.mp4", frames=2)


def test_edgetam_is_proposed_on_a_cpu_without_bf16_and_says_why(handlers, sam2_small,
                                                                 monkeypatch):
    services = handlers.services
    assert "edgetam" in services.model_ids() and sam2_small.spec.model_id in services.model_ids()
    monkeypatch.setattr(accel, "cpu_has_native_bf16", lambda *a: False)
    assert services.default_model() == "edgetam"
    line = proposal_markdown(services)
    assert "no native bf16" in line and "EdgeTAM" in line and "\n" not in line
    monkeypatch.setattr(accel, "cpu_has_native_bf16", lambda *a: True)
    assert services.proposal() is None and proposal_markdown(services) == ""
    assert services.default_model() == sam2_small.spec.model_id  # the app's default again


@pytest.mark.slow  # about 15 s on a quiet 2-core CPU: two trackers and a reference run
def test_compare_puts_edgetam_beside_sam2(handlers, clip, sam2_small, edgetam_small):
    from sam_backends import Prompts
    from sam_backends.video import create_tracker, open_video

    h, name = handlers, "compare-edgetam"
    session, _ = open_clip(h, clip, name)
    h.box(session, event({"box": [8, 18, 36, 46]}), request(name))
    views = list(h.compare(session, sam2_small.spec.model_id, "edgetam", request(name),
                           no_progress))
    run = session.compare
    assert run is not None and run.finished and run.frames_done == [2, 2]
    text = views[-1][-1]
    assert text.count("frames/s") == 2
    # the EdgeTAM side is what its own tracker gives for the same box
    engine = create_tracker("edgetam", checkpoint=edgetam_small, device="cpu",
                            precision="fp32").start(open_video(clip))
    engine.add_prompts(0, 1, Prompts(box=(8, 18, 36, 46)))
    alone = dict(engine.propagate_both(start_frame=0))
    for frame in range(2):
        np.testing.assert_array_equal(run.tracks[1].get_mask(frame, 1), alone[frame][1])
    session.release()
