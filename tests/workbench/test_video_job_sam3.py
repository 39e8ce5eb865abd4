"""The video job with SAM 3's own video model (``detector="sam3-video"``): the COCO file it
writes (read back by pycocotools) holds exactly the masks the engine gives on the same frames,
every frame where an object is seen carries SAM 3's score, and the choices that make no sense
with it are refused before any work.

The app offers SAM 3 from a random-weight folder in its checkpoints folder (low thresholds, so
random weights find something).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sam_backends.video.text_tracking import TextTrackParams
from workbench.errors import UserError

H, W, FRAMES = 48, 64, 4
THRESHOLD = 0.1


def _write_clip(path):
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(10, 1))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for index in range(FRAMES):
            frame = np.full((H, W, 3), 30, np.uint8)
            frame[14:34, 6 + 3 * index:24 + 3 * index] = (220, 60, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, sam2_small):
    from sam_backends.testing.text_models import small_sam3_video_config, write_random_sam3
    from workbench.config import AppConfig, ExtraModel
    from workbench.context import AppContext

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    config = small_sam3_video_config(score_threshold_detection=THRESHOLD,
                                     new_det_thresh=THRESHOLD, hotstart_delay=2,
                                     hotstart_unmatch_thresh=1, hotstart_dup_thresh=1)
    write_random_sam3(checkpoints / "sam3", config, seed=1)
    return AppContext(AppConfig(
        models=("sam3",), extra_models=(ExtraModel(sam2_small.spec, sam2_small.path),),
        default_model=sam2_small.spec.model_id, device="cpu", precision="fp32",
        checkpoint_dir=checkpoints, examples_dir=None))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return _write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _spec(**changes):
    from workbench.video.state import Selection
    from workbench.video.track_job import VideoJobSpec

    values = dict(model_id=None, selection=Selection(), output_format="coco_rle",
                  text=TextTrackParams(("dog",), threshold=THRESHOLD), detector="sam3-video")
    values.update(changes)
    return VideoJobSpec(**values)


def test_the_job_writes_what_the_engine_finds(ctx, clip, tmp_path):
    from pycocotools.coco import COCO

    from sam_backends.video import open_video
    from workbench.video.track_job import run_video_job

    outcome = run_video_job(ctx, _spec(), clip, tmp_path / "job", lambda _: None, lambda: False)
    engine = ctx.services.video.words_model("sam3")
    direct = engine.start(open_video(clip), TextTrackParams(("dog",), threshold=THRESHOLD))
    expected = dict(direct.run())
    assert any(expected.values()), "random weights found nothing: the comparison means little"
    coco = COCO(str(outcome.path))
    assert sorted(coco.getImgIds()) == list(range(1, FRAMES + 1))
    written = {(a["image_id"] - 1, a["track_id"]): coco.annToMask(a).astype(bool)
               for a in coco.loadAnns(coco.getAnnIds())}
    shown = {(f, i): m for f, masks in expected.items() for i, m in masks.items() if m.any()}
    assert sorted(written) == sorted(shown)
    for key, mask in shown.items():
        np.testing.assert_array_equal(written[key], mask, err_msg=str(key))
    assert not outcome.found_nothing and "detect_s" not in outcome.seconds
    for record in outcome.objects:
        assert record.name.startswith("dog")
        for row in record.frames:  # SAM 3 detects on every frame: every row has its score
            assert row.score == pytest.approx(direct.scores[(record.object_id, row.frame)])


@pytest.mark.parametrize("changes, words", [
    ({"text": None, "objects": ("x",)}, "tracks words"),
    ({"model_id": "sam2.1-tiny"}, "leave \"model\" out"),
])
def test_sam3_video_refuses_what_it_cannot_use(changes, words):
    if "objects" in changes:
        from workbench.objects import PromptSet
        from workbench.video.track_job import ObjectPrompt

        changes["objects"] = (ObjectPrompt(1, "a", 0, PromptSet(box=(1, 1, 9, 9))),)
    with pytest.raises(UserError, match=words):
        _spec(**changes)


def test_a_frame_detector_is_not_sam3_video(ctx):
    from workbench.video.track_job import frame_detector

    with pytest.raises(UserError, match="tracks by itself"):
        frame_detector(ctx, "sam3-video")
