"""Imports: our own exports read back into values, other tools' files, and hostile input
(each a listed problem, never an exception)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from format_fixtures import CLASSES, disc, iou, labelled, multi_part, rect, with_holes
from pycocotools import mask as mask_utils

from sam_backends.masks import encode_rle
from workbench.projects.formats import export_project, import_labels

H, W = 96, 160
PATH = "sub dir/ä b.jpg"


def sizes(path):
    return (W, H) if path in (PATH, "other.png") else None


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme"])
def test_exports_read_back_with_classes_and_names(fmt, tmp_path):
    masks = [with_holes(H, W, 50, 48, 30), multi_part(H, W, 10, 8), rect(H, W, 140, 5, 150, 9)]
    image = labelled(PATH, masks, [7, 3, 7])
    export_project(fmt, [image, labelled("missing.png", [disc(H, W, 9, 9, 3)])], CLASSES,
                   tmp_path)
    result = import_labels(fmt, tmp_path, sizes)
    assert [i.path for i in result.images] == [PATH]
    assert set(result.class_names) == {"big dog", "größe 猫"}
    found = result.images[0].objects
    assert [result.class_names[o.class_id] for o in found] == ["big dog", "größe 猫", "big dog"]
    for obj, mask in zip(found, masks):
        assert iou(obj.mask(), mask) >= 0.98
    assert any("missing" in str(p) for p in result.problems)


def test_coco_reads_polygons_and_uncompressed_rle(tmp_path):
    mask = disc(H, W, 60, 40, 20)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    flat = mask.flatten(order="F").astype(int)
    runs, value, count = [], 0, 0
    for pixel in flat:
        if pixel == value:
            count += 1
        else:
            runs.append(count)
            value, count = pixel, 1
    runs.append(count)
    document = {
        "images": [{"id": 1, "file_name": PATH, "width": W, "height": H}],
        "categories": [{"id": 5, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5,
             "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
            {"id": 2, "image_id": 1, "category_id": 5, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": runs}},
            {"id": 3, "image_id": 1, "category_id": 5,
             "segmentation": {"size": [H, W], "counts": rle["counts"].decode()}},
        ]}
    (tmp_path / "c.json").write_text(json.dumps(document))
    result = import_labels("coco", tmp_path / "c.json", sizes)
    assert result.problems == ()
    objects = result.images[0].objects
    assert objects[0].mask()[20, 25] and iou(objects[0].mask(), rect(H, W, 10, 10, 40, 30)) > 0.9
    assert iou(objects[1].mask(), mask) == 1.0 and iou(objects[2].mask(), mask) == 1.0


def test_hostile_coco_is_listed_not_raised(tmp_path):
    good = encode_rle(disc(H, W, 60, 40, 20))
    document = {
        "images": [{"id": 1, "file_name": PATH, "width": W, "height": H},
                   {"id": 2, "file_name": "../../etc/passwd"},
                   {"id": 3, "file_name": "other.png", "width": 10, "height": 10},
                   {"id": [1]}, "junk"],
        "categories": [{"id": 5, "name": "cat"}, {"id": 6, "name": ""}],
        "annotations": [
            {"image_id": 1, "category_id": 5, "segmentation": good},
            {"image_id": 1, "category_id": 5, "segmentation": {"size": [H, W],
                                                                "counts": "zzzz~~~~"}},
            {"image_id": 1, "category_id": 5, "segmentation": {"size": [H, W],
                                                                "counts": "0" * 5 + "PP"}},
            {"image_id": 1, "category_id": 5, "segmentation": {"size": [H, W],
                                                                "counts": [H * W + 5]}},
            {"image_id": 1, "category_id": 5, "segmentation": [[1e300, 0, 5, 5, 1, 9]]},
            {"image_id": 1, "category_id": 5, "segmentation": [[0, 0, 5, "x", 1, 9]]},
            {"image_id": 1, "category_id": 5, "segmentation": [[0, 0, 5]]},
            {"image_id": 1, "category_id": 9, "segmentation": good},
            {"image_id": [2], "category_id": 5, "segmentation": good},
            {"image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]},
            None,
        ]}
    (tmp_path / "c.json").write_text(json.dumps(document))
    result = import_labels("coco", tmp_path / "c.json", sizes)
    assert result.objects == 2  # the good RLE and the clipped 1e300 polygon
    assert len(result.problems) >= 12
    (tmp_path / "bad.json").write_text("{not json")
    assert import_labels("coco", tmp_path / "bad.json", sizes).problems
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert import_labels("coco", tmp_path / "deep.json", sizes).problems


def test_huge_and_special_files_are_bounded(tmp_path, monkeypatch):
    from workbench.projects.formats import coco_import, labelme_import

    monkeypatch.setattr(coco_import, "MAX_COCO_BYTES", 1000)
    (tmp_path / "big.json").write_text(json.dumps({"images": [], "pad": "x" * 2000}))
    (result_problem,) = import_labels("coco", tmp_path / "big.json", sizes).problems
    assert "over the limit" in str(result_problem)
    monkeypatch.setattr(labelme_import, "MAX_LABELME_BYTES", 1000)
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"shapes": [], "pad": "x" * 2000}))
    (folder / "out.json").symlink_to(tmp_path / "big.json")
    result = import_labels("labelme", folder, sizes)
    assert result.objects == 0 and len(result.problems) == 2


def test_hostile_yolo_lines(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [car, 'big dog']\n")
    labels = tmp_path / "labels" / "sub dir"
    labels.mkdir(parents=True)
    (labels / "ä b.txt").write_text("\n".join([
        "0 0.1 0.1 0.5 0.1 0.5 0.5",  # good
        "1 0.5 0.5 0.2 0.2",  # a box
        "0 0.1 0.1 0.5",  # odd count
        "7 0.1 0.1 0.5 0.1 0.5 0.5",  # unknown class
        "0 1.5 0.1 0.5 0.1 0.5 0.5",  # out of range
        "x 0.1 0.1 0.5 0.1 0.5 0.5",  # not a number
        "0 nan 0.1 0.5 0.1 0.5 0.5",
        "",
    ]))
    (tmp_path / "labels" / "ghost.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    (tmp_path / "labels" / "bin.txt").write_bytes(b"\xff\xfe\x00")
    result = import_labels("yolo", tmp_path, lambda p: sizes(p) or (
        (W, H) if p == "bin.png" else None))
    assert result.class_names == ("car", "big dog")
    assert result.objects == 2
    box = result.images[0].objects[1].mask()
    assert iou(box, rect(H, W, 64, 38, 96, 58)) == 1.0
    assert len(result.problems) == 7


def test_hostile_labelme(tmp_path):
    shapes = [
        {"label": "dog", "points": [[1, 1], [30, 1], [30, 20]], "shape_type": "polygon"},
        {"label": "dog", "points": [[40, 40], [60, 60]], "shape_type": "rectangle",
         "group_id": 2},
        {"label": "dog", "points": [[100, 40], [120, 60]], "shape_type": "rectangle",
         "group_id": 2},
        {"label": "dog", "points": [[5, 5]], "shape_type": "point"},
        {"label": "", "points": [[1, 1], [3, 1], [3, 3]]},
        {"label": "dog", "points": [[1, 1], [3]]},
        {"label": "dog", "points": [[1, 1], [3e9, 1], [3, 3]]},
        "junk",
    ]
    folder = tmp_path / "sub dir"
    folder.mkdir()
    (folder / "ä b.json").write_text(json.dumps({
        "shapes": shapes, "imagePath": "ä b.jpg", "imageWidth": W, "imageHeight": H}))
    (folder / "wrong size.json").write_text(json.dumps({
        "shapes": [], "imagePath": "../other.png", "imageWidth": 5, "imageHeight": 5}))
    (folder / "nothing.json").write_text(json.dumps({"shapes": [], "imagePath": "nope.jpg"}))
    (folder / "broken.json").write_text("[")
    result = import_labels("labelme", tmp_path, sizes)
    assert [i.path for i in result.images] == [PATH]
    objects = result.images[0].objects
    assert len(objects) == 3  # polygon, two rectangles as one group, the clipped polygon
    assert objects[1].mask()[50, 50] and objects[1].mask()[50, 110]
    assert len(result.problems) >= 7
