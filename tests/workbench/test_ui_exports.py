"""Exports: RGBA cut-outs, binary masks, COCO RLE round trips, file names."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from sam_backends.masks import decode_rle, encode_rle
from workbench.exports import (
    ExportObject,
    coco_document,
    cutout_rgba,
    mask_png,
    mask_record,
    object_file_part,
    png_bytes,
    safe_stem,
    write_exports,
)


def image_and_masks():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    first = np.zeros((40, 60), bool)
    first[5:20, 10:30] = True
    second = np.zeros((40, 60), bool)
    yy, xx = np.mgrid[:40, :60]
    second[(yy - 28) ** 2 + (xx - 45) ** 2 < 64] = True
    return image, first, second


def test_cutout_is_transparent_outside_and_exact_inside():
    image, mask, _ = image_and_masks()
    rgba = cutout_rgba(image, mask)
    assert rgba.shape == (40, 60, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[mask, :3], image[mask])
    assert (rgba[mask, 3] == 255).all()
    assert (rgba[~mask] == 0).all()  # alpha 0 and no background colour leaks
    decoded = Image.open(io.BytesIO(png_bytes(rgba)))
    assert decoded.mode == "RGBA" and decoded.format == "PNG"
    np.testing.assert_array_equal(np.asarray(decoded), rgba)


def test_mask_png_is_black_and_white():
    _, mask, _ = image_and_masks()
    decoded = np.asarray(Image.open(io.BytesIO(mask_png(mask))))
    assert decoded.dtype == np.uint8 and set(np.unique(decoded)) == {0, 255}
    np.testing.assert_array_equal(decoded == 255, mask)


def test_rle_round_trip_and_record_match_pycocotools():
    _, first, second = image_and_masks()
    for mask in (first, second, np.zeros((40, 60), bool), np.ones((3, 5), bool)):
        rle = encode_rle(mask)
        assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
        json.dumps(rle)  # JSON-ready
        np.testing.assert_array_equal(decode_rle(rle), mask)
    record = mask_record(second, 0.87654321)
    assert record["area"] == int(second.sum())
    rows, cols = np.nonzero(second)
    assert record["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1,
                              rows.max() - rows.min() + 1]
    assert record["score"] == 0.876543
    coded = {"size": record["segmentation"]["size"],
             "counts": record["segmentation"]["counts"].encode("ascii")}
    assert record["bbox"] == [float(v) for v in mask_utils.toBbox(coded)]


def test_coco_document_lists_every_object():
    _, first, second = image_and_masks()
    objects = [ExportObject(1, first, 0.9, "grabcut", {"box": [10, 5, 30, 20]}),
               ExportObject(4, second, 0.5, "sam2.1-tiny", {"points": [[45, 28]], "labels": [1]})]
    doc = coco_document(objects, "photo.jpg", (40, 60))
    assert doc["images"] == [{"id": 1, "file_name": "photo.jpg", "height": 40, "width": 60}]
    assert [a["object_id"] for a in doc["annotations"]] == [1, 4]
    for annotation, obj in zip(doc["annotations"], objects):
        seg = annotation["segmentation"]
        decoded = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), obj.mask)
        assert annotation["area"] == int(obj.mask.sum())
        assert annotation["model_id"] == obj.model_id and annotation["iscrowd"] == 0
    json.dumps(doc)


def test_write_exports_names_files_after_the_upload(tmp_path):
    image, first, second = image_and_masks()
    objects = [ExportObject(1, first, 0.9, "m", {}), ExportObject(2, second, 0.8, "m", {})]
    (tmp_path / "old_cutout.png").write_bytes(b"stale")
    paths = write_exports(tmp_path, safe_stem("My photo (1).JPG"), image, objects, "x.jpg")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        "My_photo_1_cutout.png", "My_photo_1_coco.json",
        "My_photo_1_object1_cutout.png", "My_photo_1_object1_mask.png",
        "My_photo_1_object2_cutout.png", "My_photo_1_object2_mask.png",
    ])
    union = np.asarray(Image.open(paths["cutout"]))[:, :, 3] == 255
    np.testing.assert_array_equal(union, first | second)
    alpha2 = np.asarray(Image.open(paths["object2_cutout"]))[:, :, 3]
    np.testing.assert_array_equal(alpha2 == 255, second)
    assert len(json.loads(paths["coco"].read_text())["annotations"]) == 2


def test_downloads_carry_the_names_people_gave(tmp_path):
    image, first, second = image_and_masks()
    objects = [ExportObject(1, first, 0.9, "m", {}, "red car"),
               ExportObject(2, second, 0.8, "m", {}, "狗")]  # nothing file-safe: the id only
    paths = write_exports(tmp_path, "photo", image, objects, "photo.jpg")
    assert paths["object1_mask"].name == "photo_object1-red_car_mask.png"
    assert paths["object2_cutout"].name == "photo_object2_cutout.png"
    read = np.asarray(Image.open(paths["object1_mask"])) > 0
    np.testing.assert_array_equal(read, first)
    assert object_file_part(7, " ../a b ") == "object7-a_b"
    assert object_file_part(7, "x" * 99) == "object7-" + "x" * 40


def test_safe_stem():
    assert safe_stem("/tmp/gradio/abc/cat.png") == "cat"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("") == "image" and safe_stem(None) == "image"
    assert safe_stem("été à Paris.webp") == "t_Paris"
