"""Every export format read back by its own reader and compared with the stored masks.

The figures asserted are the rules of FORMATS.md: lossless where the format can hold the mask
(COCO RLE and polygons, LabelMe, VOC, cut-outs), and for YOLO one line per object with the
bridge cost of several parts bounded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from format_fixtures import (
    CLASSES,
    blob,
    disc,
    iou,
    labelled,
    multi_part,
    read_coco,
    read_cutouts,
    read_labelme,
    read_palette_png,
    read_yolo,
    read_yolo_names,
    rect,
    with_holes,
    with_specks,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.projects.formats import FORMATS, FormatError, export_project

H, W = 96, 160
SIMPLE = {
    "disc r2": disc(H, W, 40.3, 30.6, 2), "disc r5": disc(H, W, 40, 30, 5),
    "disc r30": disc(H, W, 80, 48, 30), "rect 1x1": rect(H, W, 5, 6, 6, 7),
    "rect 2x3": rect(H, W, 5, 6, 7, 9), "rect 60x40": rect(H, W, 10, 20, 70, 60),
    "edge rect": rect(H, W, 0, 0, W, 10), "blob small": blob(H, W, 30, 30, 6, seed=1),
    "blob large": blob(H, W, 80, 48, 35, seed=2),
}
PATH = "photos/ä b (1).jpg"


def _export_one(fmt, mask, tmp_path, class_id=7, **kwargs):
    report = export_project(fmt, [labelled(PATH, [mask], [class_id])], CLASSES,
                            tmp_path / fmt, **kwargs)
    assert report.problems == ()
    return tmp_path / fmt


def _read_back(fmt, mask, tmp_path, **kwargs) -> list[np.ndarray]:
    out = _export_one(fmt, mask, tmp_path, **kwargs)
    if fmt == "coco":
        found = read_coco(out)[PATH]
        assert all(crowd == 0 and category == 7 for category, crowd, _ in found)
        return [m for _, _, m in found]
    if fmt == "yolo":
        lines = read_yolo(out / "labels" / "photos" / "ä b (1).txt", W, H)
        assert all(cls == 1 for cls, _ in lines)  # "big dog" is the second class
        return [m for _, m in lines]
    if fmt == "labelme":
        shapes = read_labelme(out / "photos" / "ä b (1).json")
        assert all(label == "big dog" for label, _ in shapes)
        return [m for _, m in shapes]
    if fmt == "voc":
        objects = read_palette_png(out / "SegmentationObject" / "photos" / "ä b (1).png")
        classes = read_palette_png(out / "SegmentationClass" / "photos" / "ä b (1).png")
        assert set(np.unique(classes[objects == 1])) == {2}
        return [objects == 1]
    raise AssertionError(fmt)


READERS = ("coco", "coco polygons", "yolo", "labelme", "voc")


def _masks(reader, mask, tmp_path):
    if reader == "coco polygons":
        return _read_back("coco", mask, tmp_path, polygons=True)
    return _read_back(reader, mask, tmp_path)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("shape", SIMPLE)
def test_simple_shapes_round_trip_as_one_object(reader, shape, tmp_path):
    masks = _masks(reader, SIMPLE[shape], tmp_path)
    assert len(masks) == 1
    assert iou(masks[0], SIMPLE[shape]) >= 0.98


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cx=st.floats(5, W - 5), cy=st.floats(5, H - 5), r=st.floats(1, 40),
       seed=st.integers(0, 10_000), reader=st.sampled_from(READERS))
def test_random_blobs_round_trip(cx, cy, r, seed, reader, tmp_path_factory):
    mask = blob(H, W, cx, cy, r, seed)
    if not mask.any():
        return
    masks = _masks(reader, mask, tmp_path_factory.mktemp("blob"))
    assert len(masks) == 1 and iou(masks[0], mask) >= 0.98


@pytest.mark.parametrize("reader", READERS)
def test_holes_are_kept(reader, tmp_path):
    mask = with_holes(H, W, 80, 48, 40, holes=3)
    masks = _masks(reader, mask, tmp_path)
    assert len(masks) == 1
    # exact but for LabelMe, whose PIL filler paints a keyhole's bridge (measured 0.996)
    assert iou(masks[0], mask) >= (0.99 if reader == "labelme" else 1.0)
    assert not masks[0][48, 80 + 18]  # a hole stays open


@pytest.mark.parametrize("reader", READERS)
def test_two_parts_are_one_object(reader, tmp_path):
    mask = multi_part(H, W, r=20, gap=12)
    masks = _masks(reader, mask, tmp_path)
    union = np.logical_or.reduce(masks)
    assert len(masks) == 1  # LabelMe: two polygons with one group_id, read as one object
    # YOLO joins the parts by a bridge it paints: ~gap extra pixels (measured 0.988)
    assert iou(union, mask) >= (0.98 if reader == "yolo" else 1.0)


def test_yolo_drops_specks_but_never_the_object(tmp_path):
    mask = with_specks(H, W, 12)
    (found,) = _read_back("yolo", mask, tmp_path)
    assert iou(found, mask) >= 0.98
    assert not found[2, 2]  # a 1-pixel speck is dropped
    lone = rect(H, W, 9, 9, 10, 10)  # ... unless it is the whole object
    assert iou(_read_back("yolo", lone, tmp_path / "lone")[0], lone) == 1.0


def test_yolo_writes_no_label_file_for_a_background_image_and_names_in_class_order(tmp_path):
    images = [labelled("empty.png", []), labelled("one.png", [disc(H, W, 20, 20, 5)], [3])]
    report = export_project("yolo", images, CLASSES, tmp_path)
    assert (report.images, report.objects) == (2, 1)
    assert not (tmp_path / "labels" / "empty.txt").exists()
    assert read_yolo_names(tmp_path) == {0: "car", 1: "big dog", 2: "größe 猫"}
    assert (tmp_path / "labels" / "one.txt").read_text().startswith("2 ")


def test_coco_categories_sizes_and_crowd_flag(tmp_path):
    mask = with_holes(H, W, 80, 48, 40) | multi_part(H, W, 8, 100)
    export_project("coco", [labelled("a/b.png", [mask], [3]), labelled("c.png", [])],
                   CLASSES, tmp_path)
    data = json.loads((tmp_path / "annotations.json").read_text(encoding="utf-8"))
    assert [(c["id"], c["name"]) for c in data["categories"]] == [
        (1, "car"), (7, "big dog"), (3, "größe 猫")]
    assert [(i["file_name"], i["width"], i["height"]) for i in data["images"]] == [
        ("a/b.png", W, H), ("c.png", W, H)]
    (ann,) = data["annotations"]
    assert ann["iscrowd"] == 0 and ann["area"] == int(mask.sum())
    ys, xs = np.nonzero(mask)
    assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


def test_voc_class_indices_void_and_labelmap(tmp_path):
    a, b = rect(H, W, 10, 10, 40, 40), rect(H, W, 30, 30, 60, 60)
    export_project("voc", [labelled("x.jpg", [a, b], [1, 3]), labelled("e.jpg", [])],
                   CLASSES, tmp_path)
    classes = read_palette_png(tmp_path / "SegmentationClass" / "x.png")
    objects = read_palette_png(tmp_path / "SegmentationObject" / "x.png")
    assert classes[15, 15] == 1 and classes[50, 50] == 3 and classes[35, 35] == 255
    assert objects[15, 15] == 1 and objects[50, 50] == 2 and objects[35, 35] == 255
    assert not read_palette_png(tmp_path / "SegmentationClass" / "e.png").any()
    assert (tmp_path / "labelmap.txt").read_text(encoding="utf-8").splitlines()[1:] == [
        "background:0,0,0::", "car:78,121,167::", "big dog:242,142,43::",
        "größe 猫:225,87,89::"]


def test_cutouts_alpha_is_the_mask(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    source = tmp_path / "src ä.png"
    Image.fromarray(pixels).save(source)
    masks = [with_holes(H, W, 50, 48, 30), disc(H, W, 120, 30, 8)]
    image = labelled("dir/src ä.png", masks, [7, 7], source=source)
    report = export_project("cutouts", [image], CLASSES, tmp_path / "out")
    assert report.objects == 2
    found = read_cutouts(tmp_path / "out")
    assert sorted(found) == ["dir/src ä_big dog_1.png", "dir/src ä_big dog_2.png"]
    for name, mask in zip(sorted(found), masks):
        rgba = found[name]
        ys, xs = np.nonzero(mask)
        crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert np.array_equal(rgba[..., 3] == 255, crop)
        region = pixels[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert np.array_equal(rgba[crop][:, :3], region[crop])


@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_object_project_and_problems(fmt, tmp_path):
    report = export_project(fmt, [], CLASSES, tmp_path)
    assert (report.images, report.objects) == (0, 0)
    bad = [labelled("../escape.jpg", [disc(H, W, 9, 9, 4)]),
           labelled("ok.jpg", [disc(H, W, 9, 9, 4)], [99])]
    report = export_project(fmt, bad, CLASSES, tmp_path / "bad")
    assert report.objects == 0 and len(report.problems) == 2
    assert not (tmp_path / "escape.jpg").exists()


def test_unknown_format_names_the_choices(tmp_path):
    with pytest.raises(FormatError, match="coco, yolo, labelme, voc, cutouts"):
        export_project("tfrecord", [], CLASSES, tmp_path)


def test_export_streams_the_images(tmp_path):
    """A generator is consumed one image at a time (never materialised first)."""
    seen = []

    def images():
        for k in range(5):
            seen.append(k)
            yield labelled(f"{k}.png", [disc(H, W, 20 + k, 20, 5)])

    report = export_project("coco", images(), CLASSES, tmp_path)
    assert report.images == 5 and seen == list(range(5))


def test_same_stem_images_do_not_overwrite(tmp_path):
    images = [labelled("a.jpg", [disc(H, W, 20, 20, 5)]), labelled("a.png", [])]
    report = export_project("labelme", images, CLASSES, tmp_path / "lm")
    assert (tmp_path / "lm" / "a.json").exists() and (tmp_path / "lm" / "a.png.json").exists()
    report = export_project("yolo", images[:1] * 2, CLASSES, tmp_path / "y")
    assert len(report.problems) == 1 and report.objects == 1
