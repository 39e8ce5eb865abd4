"""OWLv2 + any SAM: the cached detector equals transformers end to end; one mask per box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_backends import create_backend
from sam_backends.errors import PromptError, UnsupportedPromptError
from sam_backends.instances import Instances
from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
from sam_backends.text import DetectThenSegment, load_owlv2
from sam_backends.text.detectors import Detections
from sam_backends.text.pipeline import box_iou, clip_box, select_boxes
from sam_backends.types import Prompts

IMAGE_HW = (48, 80)


@pytest.fixture(scope="module")
def owl_folder(tmp_path_factory):
    torch.set_num_threads(1)
    return write_random_owlv2(tmp_path_factory.mktemp("owlv2"), small_owlv2_config())


@pytest.fixture(scope="module")
def detector(owl_folder):
    return load_owlv2(owl_folder, "cpu", "fp32")


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(1).random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


def _reference(folder, image, phrases, threshold):
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    model = Owlv2ForObjectDetection.from_pretrained(str(folder)).eval()
    processor = Owlv2Processor.from_pretrained(str(folder))
    with torch.inference_mode():
        inputs = processor(text=[phrases], images=image, return_tensors="pt")
        outputs = model(**inputs)
        return processor.post_process_grounded_object_detection(
            outputs=outputs, threshold=threshold, target_sizes=[IMAGE_HW],
            text_labels=[phrases])[0]


@pytest.mark.parametrize("phrases, threshold", [(["dog"], 0.0), (["dog", "red car"], 0.0),
                                                (["dog", "red car", "cat"], 0.5)])
def test_cached_path_equals_transformers_end_to_end(detector, owl_folder, image, phrases,
                                                    threshold):
    found = detector.detect(image, phrases, threshold)
    reference = _reference(owl_folder, image, phrases, threshold)
    np.testing.assert_array_equal(found.scores, reference["scores"].numpy())
    np.testing.assert_array_equal(found.boxes, reference["boxes"].numpy())
    assert list(found.labels) == reference["text_labels"]
    assert found.image_size == IMAGE_HW and len(found) == len(reference["scores"])


def test_a_second_phrase_does_not_rerun_the_image_tower(owl_folder, image, monkeypatch):
    detector = load_owlv2(owl_folder, "cpu", "fp32")
    calls = []
    original = detector.model.image_embedder
    monkeypatch.setattr(detector.model, "image_embedder",
                        lambda **kw: calls.append(1) or original(**kw))
    detector.detect(image, "dog", 0.0)
    detector.detect(image, "cat, person", 0.0)
    detector.detect(image.copy(), "truck", 0.0)  # same pixels, another array: same key
    assert calls == [1]
    stats = detector.cache.stats()
    assert stats.hits == 2 and stats.entries == 1 and 0 < stats.bytes <= stats.max_bytes
    detector.detect(image[::-1].copy(), "dog", 0.0)
    assert calls == [1, 1]


def test_cache_is_bounded(owl_folder, image):
    from sam_backends.cache import EmbeddingCache

    detector = load_owlv2(owl_folder, "cpu", "fp32")
    one = detector.image_features(image).nbytes
    detector.cache = EmbeddingCache(2 * one)
    for seed in range(4):
        detector.detect(np.roll(image, seed, axis=1), "dog", 0.0)
    assert detector.cache.stats().entries == 2


@pytest.mark.parametrize("phrases, threshold, match", [
    ("", 0.1, "empty"), ("x" * 10_000, 0.1, "max_chars"),
    (",".join(f"o{i}" for i in range(500)), 0.1, "max_chars"),
    ("狗", 0.1, "does not know"), ("qzxvqzxvqzxvqzxv", 0.1, "OWLv2 reads at most 16"),
    ("dog", 2.0, "threshold"), ("dog", float("nan"), "threshold"),
])
def test_bad_input(detector, image, phrases, threshold, match):
    with pytest.raises(PromptError, match=match):
        detector.detect(image, phrases, threshold)


@pytest.fixture(scope="module")
def sam(sam2_small):
    return create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                          precision="fp32")


def test_pipeline_gives_one_mask_per_box_equal_to_predict(detector, sam, image):
    pipeline = DetectThenSegment(detector, sam)
    assert pipeline.model_id == "owlv2+test-sam2-small"
    embedding = sam.encode(image)
    found = detector.detect(image, "dog, red car", 0.3)
    instances = pipeline.segment_text(image, "dog, red car", 0.3, embedding=embedding)
    assert isinstance(instances, Instances) and instances.model_id == pipeline.model_id
    boxes = [clip_box(b, *IMAGE_HW) for b in found.boxes[np.argsort(-found.scores,
                                                                     kind="stable")]]
    assert len(instances) == sum(b is not None for b in boxes) > 0
    for i, box in enumerate(b for b in boxes if b is not None):
        prediction = sam.predict(embedding, Prompts(box=box))
        np.testing.assert_array_equal(instances.masks[i], prediction.mask(prediction.best_index))
    assert np.all(np.diff(instances.scores) <= 0)
    assert set(instances.labels) <= {"dog", "red car"}
    assert set(instances.seconds) == {"encode", "detect", "decode"}
    assert instances.seconds["encode"] == 0.0


def test_pipeline_encodes_when_no_embedding_is_given(detector, sam, image):
    instances = DetectThenSegment(detector, sam, max_instances=2).segment_text(image, "dog", 0.0)
    assert len(instances) <= 2 and instances.seconds["encode"] > 0


def test_pipeline_with_nothing_found(detector, sam, image):
    instances = DetectThenSegment(detector, sam).segment_text(image, "dog", 1.0)
    assert len(instances) == 0 and instances.image_size == IMAGE_HW


def test_pipeline_refuses_a_foreign_embedding_and_boxless_models(detector, sam, image):
    other = sam.encode(np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(PromptError, match="encode this image"):
        DetectThenSegment(detector, sam).segment_text(image, "dog", embedding=other)
    with pytest.raises(PromptError, match="nms_iou"):
        DetectThenSegment(detector, sam, nms_iou=0.0)

    class NoBox:
        spec = type("Spec", (), {"display_name": "Pointy",
                                 "capabilities": type("C", (), {"box": False})()})()

    with pytest.raises(UnsupportedPromptError, match="Pointy does not take box prompts"):
        DetectThenSegment(detector, NoBox())


def test_nms_across_phrases_and_clipping():
    detections = Detections(
        np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [-5, -5, 0.5, 40]],
                 np.float32),
        np.array([0.9, 0.8, 0.7, 0.6], np.float32), ("dog", "cat", "dog", "cat"), (40, 40))
    assert select_boxes(detections, None, 10) == [0, 1, 2, 3]
    assert select_boxes(detections, 0.5, 10) == [0, 2, 3]
    assert select_boxes(detections, 0.5, 1) == [0]
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert clip_box([-5, -5, 0.5, 40], 40, 40) is None  # under a pixel wide inside the image
    assert clip_box([-5, 2, 50, 60], 40, 40) == (0.0, 2.0, 40.0, 40.0)
