"""Exports: what is written is read back (PyAV for MP4s, PIL for PNGs, pycocotools for RLE)."""

from __future__ import annotations

import json
import os
import zipfile

import av
import numpy as np
import pytest
from PIL import Image
from test_video_source import clip_frames, write_clip

from sam_backends.video import MaskTrack, open_video
from sam_backends.video.exports import (
    cutout_frame,
    mask_png_name,
    write_cutout_mp4,
    write_mask_zip,
    write_rendered_mp4,
    write_rle_json,
)


def fake_masks(video, objects=(1, 2)):
    track = MaskTrack(video.size)
    height, width = video.size
    for i in range(video.num_frames):
        for obj in objects:
            mask = np.zeros((height, width), bool)
            mask[obj * 5: obj * 5 + 10, i: i + 20 + obj] = True
            track.set(i, obj, mask)
    return track


def read_video(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return (stream.codec_context.name, stream.codec_context.pix_fmt, frames,
                [s.type for s in container.streams])


@pytest.mark.parametrize("size", [(48, 64), (47, 65)])
def test_rendered_mp4_reads_back(tmp_path, size):
    """The engine encodes what the caller draws (the overlay is the application's:
    ``workbench.video.exports``); here object 1's pixels are painted pure blue."""
    video = open_video(clip_frames(6, *size), fps=12)
    masks = fake_masks(video)

    def paint(index, frame):
        out = frame.copy()
        out[masks[index][1]] = (0, 0, 255)
        return out

    path = write_rendered_mp4(video, tmp_path / "overlay.mp4", paint)
    codec, pix_fmt, frames, _ = read_video(path)
    assert (codec, pix_fmt, len(frames)) == ("h264", "yuv420p", 6)
    assert frames[0].shape == (size[0] + size[0] % 2, size[1] + size[1] % 2, 3)
    inside = masks[2][1] & ~masks[2][2]
    shown = frames[2][:size[0], :size[1], 2].astype(float)
    assert shown[inside].mean() > shown[~inside].mean() + 60
    assert os.listdir(tmp_path) == ["overlay.mp4"]  # no partial files left


def test_overlay_copies_audio(tmp_path):
    source = write_clip(tmp_path / "with_audio.mp4", count=10, audio=True)
    video = open_video(source, start_s=0.2)
    out = write_rendered_mp4(video, tmp_path / "out.mp4", lambda i, frame: frame)
    _, _, frames, kinds = read_video(out)
    assert len(frames) == 8 and kinds == ["video", "audio"]
    silent = write_rendered_mp4(video, tmp_path / "silent.mp4", lambda i, frame: frame,
                                copy_audio=False)
    assert read_video(silent)[3] == ["video"]


def test_cutout_on_colour_and_checker(tmp_path):
    video = open_video(clip_frames(3), fps=10)
    masks = fake_masks(video, objects=(1,))
    green = cutout_frame(video.frame(0), masks[0], (0, 255, 0))
    assert (green[~masks[0][1]] == (0, 255, 0)).all()
    assert (green[masks[0][1]] == video.frame(0)[masks[0][1]]).all()
    checker = cutout_frame(video.frame(0), {}, "checker", square=4)
    assert set(np.unique(checker)) == {153, 204}
    path = write_cutout_mp4(video, masks, tmp_path / "cut.mp4", background="checker")
    codec, pix_fmt, frames, _ = read_video(path)
    assert (codec, pix_fmt, len(frames)) == ("h264", "yuv420p", 3)


def test_mask_zip(tmp_path):
    video = open_video(clip_frames(4), fps=10)
    masks = fake_masks(video)
    path = write_mask_zip(masks, tmp_path / "masks.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert len(names) == 8 and mask_png_name(3, 2) in names
        with archive.open(mask_png_name(3, 2)) as handle:
            png = np.asarray(Image.open(handle)) > 127
    np.testing.assert_array_equal(png, masks[3][2])


def test_coco_json_is_read_by_pycocotools(tmp_path):
    """Every object on every frame is an annotation COCO's own reader finds, mask for mask."""
    from pycocotools.coco import COCO

    video = open_video(clip_frames(5), fps=10, stride=2)
    masks = {index: dict(row) for index, row in fake_masks(video).items()}
    masks[1][2] = np.zeros(video.size, bool)  # an empty mask: no annotation on that frame
    path = write_rle_json(video, masks, tmp_path / "masks.json", object_names={1: "dog"})
    document = json.loads(path.read_text())
    assert document["fps"] == 5.0 and document["size"] == [48, 64]
    assert document["frame_indices"] == [0, 2, 4]
    assert document["objects"] == [{"id": 1, "name": "dog", "category_id": 1},
                                   {"id": 2, "name": "object 2", "category_id": 2}]
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [1, 2, 3]
    assert coco.loadImgs(3)[0]["source_index"] == 4
    assert len(coco.getAnnIds()) == 5  # 3 frames x 2 objects, less the empty one
    assert coco.getAnnIds(imgIds=[2], catIds=[2]) == []
    for annotation in coco.loadAnns(coco.getAnnIds()):
        frame = annotation["image_id"] - 1
        expected = masks[frame][annotation["track_id"]]
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), expected)
        assert annotation["area"] == expected.sum()
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"dog", "object 2"}
