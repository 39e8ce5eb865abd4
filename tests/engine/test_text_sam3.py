"""SAM 3 through transformers: loading, exactness on cached features, prompts, bad input.

A reduced-size random ``Sam3VideoConfig`` (2 ViT layers, 224 px) is saved as a model folder and
loaded through ``create_backend("sam3", checkpoint=folder)``; the references are transformers'
own classes called the documented way on the same folder.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sam_backends import create_backend, get_spec
from sam_backends.errors import (
    CheckpointCorruptError,
    PromptError,
    SamBackendError,
    UnsupportedPromptError,
)
from sam_backends.families.sam3.backend import parameter_count
from sam_backends.testing.text_models import (
    build_random_sam3,
    small_sam3_config,
    tiny_clip_tokenizer,
    write_random_sam3,
)
from sam_backends.text import segment_text, supports_text
from sam_backends.types import Prompts

IMAGE_HW = (120, 160)


@pytest.fixture(scope="module")
def sam3_folder(tmp_path_factory):
    torch.set_num_threads(1)
    return write_random_sam3(tmp_path_factory.mktemp("sam3"), small_sam3_config())


@pytest.fixture(scope="module")
def backend(sam3_folder):
    return create_backend("sam3", checkpoint=sam3_folder, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def embedding(backend, image):
    return backend.encode(image)


@pytest.fixture(scope="module")
def reference(sam3_folder):
    """transformers' Sam3Model and Sam3Processor, loaded the documented way."""
    from transformers import Sam3Model, Sam3Processor

    return (Sam3Model.from_pretrained(str(sam3_folder)).eval(),
            Sam3Processor.from_pretrained(str(sam3_folder)))


def _reference_text(reference, image, phrase, threshold, boxes=None):
    model, processor = reference
    with torch.inference_mode():
        if boxes:
            inputs = processor(images=image, text=phrase, input_boxes=[boxes],
                               input_boxes_labels=[[1] * len(boxes)], return_tensors="pt")
        else:
            inputs = processor(images=image, text=phrase, return_tensors="pt")
        sizes = inputs.pop("original_sizes").tolist()
        outputs = model(**inputs)
        return processor.post_process_instance_segmentation(
            outputs, threshold=threshold, target_sizes=sizes)[0]


def _same_as_reference(instances, reference):
    order = np.argsort(-reference["scores"].numpy(), kind="stable")
    np.testing.assert_array_equal(instances.scores, reference["scores"].numpy()[order])
    np.testing.assert_array_equal(instances.masks, reference["masks"].bool().numpy()[order])


def test_catalogue_entry_names_the_licence_and_gated_repo():
    spec = get_spec("sam3")
    assert spec.family == "sam3" and spec.hf_repo == "facebook/sam3" and spec.gated
    assert spec.license == "SAM License" and "SAM License" in spec.display_name
    caps = spec.capabilities
    assert caps.text and caps.points and caps.box and not caps.mask_refinement
    assert "text" in caps.as_list()


def test_text_on_cached_features_equals_transformers_end_to_end(backend, embedding, image,
                                                                 reference):
    instances = backend.segment_text(embedding, "dog", threshold=0.0)
    assert len(instances) > 0 and set(instances.labels) == {"dog"}
    assert instances.masks.shape[1:] == IMAGE_HW and instances.model_id == "sam3"
    _same_as_reference(instances, _reference_text(reference, image, "dog", 0.0))


def test_several_phrases_reuse_one_encoding(backend, embedding, image, reference):
    instances = segment_text(backend, embedding, "dog, red car", 0.0)
    assert set(instances.labels) == {"dog", "red car"}
    assert np.all(np.diff(instances.scores) <= 0)  # highest first
    car = instances.select([i for i, label in enumerate(instances.labels) if label == "red car"])
    _same_as_reference(car, _reference_text(reference, image, "red car", 0.0))
    assert "decode" in instances.seconds


def test_exemplar_box_equals_transformers(backend, embedding, image, reference):
    box = [20.0, 10.0, 90.0, 80.0]
    instances = backend.segment_text(embedding, "dog", 0.0, exemplar_boxes=[box])
    _same_as_reference(instances, _reference_text(reference, image, "dog", 0.0, [box]))


def test_threshold_filters(backend, embedding):
    everything = backend.segment_text(embedding, "dog", threshold=0.0)
    none = backend.segment_text(embedding, "dog", threshold=1.0)
    assert len(none) == 0 and none.image_size == IMAGE_HW
    cut = float(np.median(everything.scores))
    assert len(backend.segment_text(embedding, "dog", cut)) == int((everything.scores > cut).sum())


@pytest.fixture(scope="module")
def reference_tracker(sam3_folder):
    return _reference_tracker(sam3_folder)


def _reference_tracker(folder):
    """Sam3TrackerModel with a three-level neck, loaded strictly from the folder's weights."""
    from safetensors.torch import load_file
    from transformers import Sam3TrackerModel, Sam3VideoConfig

    raw = Sam3VideoConfig.from_pretrained(str(folder))
    config = copy.deepcopy(raw.tracker_config)
    config.vision_config = copy.deepcopy(raw.detector_config.vision_config)
    config.vision_config.scale_factors = [4.0, 2.0, 1.0]
    model = Sam3TrackerModel(config).eval()
    state = {}
    for key, value in load_file(str(folder / "model.safetensors")).items():
        if key.startswith("detector_model.vision_encoder.backbone."):
            state["vision_encoder." + key[len("detector_model.vision_encoder."):]] = value
        elif key.startswith("tracker_neck.") and ".3." not in key:
            state["vision_encoder.neck." + key[len("tracker_neck."):]] = value
        elif key.startswith("tracker_model."):
            state[key[len("tracker_model."):]] = value
    own = model.state_dict()
    result = model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    assert not result.missing_keys
    return model


@pytest.mark.parametrize("prompts", [
    Prompts(points=[(50, 40)], labels=[1], multimask=True),
    Prompts(points=[(50, 40), (120, 100)], labels=[1, 0]),
    Prompts(box=(10, 10, 100, 90)),
    Prompts(points=[(50, 40)], labels=[1], box=(10, 10, 100, 90)),
], ids=["point-multimask", "two-points", "box", "box+point"])
def test_points_and_boxes_equal_sam3_tracker(backend, embedding, image, reference,
                                             reference_tracker, prompts):
    from transformers import Sam3TrackerProcessor

    processor = Sam3TrackerProcessor(reference[1].image_processor)
    kwargs = {}
    if prompts.points:
        kwargs["input_points"] = [[[list(p) for p in prompts.points]]]
        kwargs["input_labels"] = [[list(prompts.labels)]]
    if prompts.box is not None:
        kwargs["input_boxes"] = [[list(prompts.box)]]
    with torch.inference_mode():
        inputs = processor(images=image, return_tensors="pt", **kwargs)
        sizes = inputs.pop("original_sizes")
        out = reference_tracker(**inputs, multimask_output=prompts.multimask)
        masks = processor.post_process_masks(out.pred_masks, sizes)[0][0]
    prediction = backend.predict(embedding, prompts)
    np.testing.assert_array_equal(prediction.scores, out.iou_scores[0, 0].numpy())
    np.testing.assert_array_equal(prediction.masks, masks.numpy())
    assert prediction.low_res_logits.shape[0] == prediction.count


def test_save_pretrained_layout_loads_too(tmp_path, image):
    """transformers' own save_pretrained writes tracker_model.tracker_model.*; both load alike."""
    config = small_sam3_config()
    model = build_random_sam3(config)
    hub = write_random_sam3(tmp_path / "hub", model=model)
    saved = write_random_sam3(tmp_path / "saved", model=model, hub_layout=False)
    a = create_backend("sam3", checkpoint=hub, device="cpu", precision="fp32")
    b = create_backend("sam3", checkpoint=saved, device="cpu", precision="fp32")
    prompts = Prompts(points=[(30, 30)], labels=[1])
    ea, eb = a.encode(image), b.encode(image)
    np.testing.assert_array_equal(a.predict(ea, prompts).masks, b.predict(eb, prompts).masks)


def test_damaged_tracker_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = write_random_sam3(tmp_path / "s", small_sam3_config())
    state = load_file(str(folder / "model.safetensors"))
    dropped = next(k for k in state if k.startswith("tracker_model.mask_decoder."))
    del state[dropped]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointCorruptError, match="missing"):
        create_backend("sam3", checkpoint=folder, device="cpu", precision="fp32")


def test_bf16_runs_and_stays_finite(sam3_folder, image):
    backend = create_backend("sam3", checkpoint=sam3_folder, device="cpu", precision="bf16")
    embedding = backend.encode(image)
    assert embedding.precision == "bf16"
    instances = backend.segment_text(embedding, "dog", 0.0)
    assert len(instances) > 0 and np.isfinite(instances.scores).all()
    assert backend.predict(embedding, Prompts(points=[(5, 5)], labels=[1])).count == 1


@pytest.mark.parametrize("phrases, match", [
    ("", "empty"),
    ("   ,  ; ", "empty"),
    ("x" * 10_000, "max_chars"),
    (",".join(f"p{i}" for i in range(500)), "max_chars"),
    (",".join(f"p{i}" for i in range(40)), "max_phrases"),
    ("自転車", "does not know"),
    ("qzxv" * 10, "max_tokens"),  # 40 unmerged letters: 42 tokens, the context is 32
    (42, "must be a string"),
])
def test_bad_phrases_are_refused(backend, embedding, phrases, match):
    with pytest.raises(PromptError, match=match):
        backend.segment_text(embedding, phrases)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_bad_thresholds_are_refused(backend, embedding, threshold):
    with pytest.raises(PromptError, match="threshold"):
        backend.segment_text(embedding, "dog", threshold)


def test_bad_exemplars_and_prompts_are_refused(backend, embedding):
    with pytest.raises(PromptError, match="Exemplar box 0"):
        backend.segment_text(embedding, "dog", exemplar_boxes=[(0, 0, 500, 500)])
    with pytest.raises(PromptError, match="outside"):
        backend.predict(embedding, Prompts(points=[(500, 5)], labels=[1]))
    with pytest.raises(UnsupportedPromptError, match="mask refinement"):
        backend.predict(embedding, Prompts(points=[(5, 5)], labels=[1],
                                           mask_input=np.zeros((256, 256), np.float32)))
    with pytest.raises(PromptError, match="Prompts"):
        backend.predict(embedding, {"points": [(5, 5)]})


def test_embedding_of_another_model_is_refused(backend, sam2_small, image):
    other = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                           precision="fp32")
    foreign = other.encode(image)
    with pytest.raises(SamBackendError, match="encode the image with this model"):
        backend.segment_text(foreign, "dog")
    with pytest.raises(SamBackendError, match="Embedding returned by encode"):
        backend.segment_text("not an embedding", "dog")


def test_a_model_without_text_is_refused_clearly(sam2_small, image):
    other = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                           precision="fp32")
    assert not supports_text(other)
    with pytest.raises(UnsupportedPromptError, match="does not take text prompts.*sam3"):
        segment_text(other, other.encode(image), "dog")


def test_tokenizer_is_byte_level_like_clip():
    tokenizer = tiny_clip_tokenizer()
    assert tokenizer.convert_ids_to_tokens(tokenizer("dog")["input_ids"])[1] == "dog</w>"
    assert len(tokenizer("狗", add_special_tokens=False)["input_ids"]) == 3


@pytest.mark.slow
def test_full_size_sam3_builds_with_the_catalogue_parameter_count():
    """Random weights at the published size (the default config): the detector is built for
    real (about 840 M parameters, 3.4 GB), the whole backend counted on the meta device. No
    forward: one 1008 px encode takes 30-45 s on two CPU cores (see benchmarks/bench_text.py)."""
    from transformers import Sam3Config, Sam3Model

    torch.set_num_threads(1)
    assert parameter_count() == get_spec("sam3").num_params
    detector = Sam3Model(Sam3Config())
    assert 830e6 < sum(p.numel() for p in detector.parameters()) < 850e6
