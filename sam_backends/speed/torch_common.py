"""What the PyTorch backends (SAM 1 and SAM 2.1) share: the encode/predict skeleton.

``TorchBackend`` owns the parts that must be identical for every PyTorch model: prompt and
embedding checks, ``torch.inference_mode()``, timing, the precision contexts and the conversion
of results to numpy. A family backend (``families/sam1``, ``families/sam2``) only fills in five
small steps, each reproducing its upstream predictor operation for operation:

    image  --_image_tensor-->  model input  --_encode-->  features      (encode)
    prompts --_prompt_tensors-->  tensors  --_decode-->  low-res logits, scores
    low-res logits --_upscale-->  mask logits at the original resolution      (predict)

The fast precision ("bf16", each family's ``fast`` module) subclasses the family backends
and overrides ``_encode``, ``_decode`` and ``_masks`` (upscaling and thresholding in one
step); the exact "fp32" path above is untouched by it.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import importlib
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

import numpy as np

from ..base import Backend, array_nbytes
from ..device import EXACT_PRECISION
from ..errors import (
    BackendUnavailableError,
    CheckpointMissingError,
    PromptError,
    SamBackendError,
    UnsupportedPromptError,
)
from ..registry import ModelSpec
from ..types import Embedding, Prediction, Prompts
from ..weights.checkpoint_loading import load_strict, read_state_dict

# "bf16" runs the fast path (``families/<name>/fast.py``); "fp32" stays exact.
SUPPORTED_PRECISIONS = (EXACT_PRECISION, "fp32-fast", "bf16")


def import_upstream(module: str, pip_name: str, model_id: str) -> ModuleType:
    """Import an upstream package, or explain how to install it.

    Raises:
        BackendUnavailableError: the package (or one of its dependencies) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"Model {model_id} needs the Python package {pip_name!r}, which could not be "
            f"imported ({exc}). Install it with: pip install {pip_name} "
            "(or pip install -r requirements.txt)."
        ) from exc


def check_precision(precision: str, model_id: str) -> None:
    """Refuse precisions this backend cannot run yet (only exact fp32 for now)."""
    if precision not in SUPPORTED_PRECISIONS:
        raise SamBackendError(
            f"Precision {precision!r} is not available for {model_id}; "
            f"use one of: {', '.join(SUPPORTED_PRECISIONS)}."
        )


def load_checkpoint_into(
    model: Any, spec: ModelSpec, path: Path | None, nested_key: str | None = None
) -> None:
    """Read ``path`` safely (CPU, weights only) and load it strictly into ``model``."""
    if path is None:
        raise CheckpointMissingError(
            f"Model {spec.model_id} needs a checkpoint file but none was given. "
            f"Download it with: python -m sam_backends download {spec.model_id}"
        )
    state_dict = read_state_dict(Path(path), spec.model_id, nested_key=nested_key)
    load_strict(model, state_dict, Path(path), spec.model_id)


def check_capabilities(spec: ModelSpec, prompts: Prompts) -> None:
    """Raise ``UnsupportedPromptError`` for a prompt kind ``spec`` does not list."""
    caps = spec.capabilities
    wanted = (
        (bool(prompts.points), caps.points, "point prompts"),
        (prompts.box is not None, caps.box, "box prompts"),
        (
            bool(prompts.points) and prompts.box is not None,
            caps.box_and_points,
            "a box combined with points",
        ),
        (prompts.mask_input is not None, caps.mask_refinement, "mask refinement (mask_input)"),
        (prompts.multimask, caps.multimask, "multimask output"),
    )
    for used, supported, what in wanted:
        if used and not supported:
            raise UnsupportedPromptError(
                f"{spec.display_name} does not support {what}; remove it or pick another model."
            )


def to_rgb(image: Any) -> np.ndarray:
    """RGB uint8 HxWx3 array from an array or PIL image (see ``images.to_rgb_array``)."""
    from ..images import to_rgb_array

    return to_rgb_array(image)


class TorchBackend(Backend):
    """Skeleton shared by the SAM 1 and SAM 2.1 backends.

    Subclasses implement ``_image_tensor``, ``_encode``, ``_prompt_tensors``, ``_decode`` and
    ``_upscale``. Nothing here stores per-image state: everything an image needs travels in
    its ``Embedding``.
    """

    mask_threshold = 0.0  # logits above this are foreground, as in both upstream predictors

    def __init__(self, spec: ModelSpec, model: Any, device: str, precision: str) -> None:
        check_precision(precision, spec.model_id)
        from .accel import configure_threads

        configure_threads()  # the process-wide thread policy, applied once
        self.spec = spec
        self.model = model
        self.device = device
        self.precision = precision

    # -- precision: the one place a faster mode changes -------------------------------------
    def _encoder_context(self) -> contextlib.AbstractContextManager[Any]:
        """Context around the image encoder (fp32: nothing)."""
        return contextlib.nullcontext()

    def _decoder_context(self) -> contextlib.AbstractContextManager[Any]:
        """Context around the prompt encoder and mask decoder (fp32: nothing)."""
        return contextlib.nullcontext()

    # -- the public contract ----------------------------------------------------------------
    def encode(self, image: Any) -> Embedding:
        """Run the image encoder once; see ``Backend.encode``."""
        import torch

        rgb = to_rgb(image)
        start = time.perf_counter()
        with torch.inference_mode():
            input_image = self._image_tensor(rgb)
            with self._encoder_context():
                features = self._encode(input_image)
        seconds = time.perf_counter() - start
        return Embedding(
            model_id=self.model_id,
            precision=self.precision,
            original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            input_size=tuple(int(s) for s in input_image.shape[-2:]),
            features=features,
            nbytes=array_nbytes(features),
            encode_seconds=seconds,
        )

    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        """Decode one object's masks; see ``Backend.predict``."""
        return self._predict(embedding, prompts, lambda features, tensors: self._decode(
            features, tensors, prompts.multimask))

    def predict_single_or_candidates(self, embedding: Embedding, prompts: Prompts,
                                     unsure_below: float) -> Prediction:
        """See ``Backend.predict_single_or_candidates``: one prompt encoding, and the decodes
        of ``_decode_single_or_candidates``."""
        return self._predict(embedding, prompts, lambda features, tensors: (
            self._decode_single_or_candidates(features, tensors, unsure_below)))

    def _decode_single_or_candidates(self, features: Mapping[str, Any],
                                     tensors: Mapping[str, Any], unsure_below: float
                                     ) -> tuple[Any, Any]:
        """One mask, or three when its score is below ``unsure_below``: two decodes here
        (upstream's decoder selects inside its forward); the fast backends need one."""
        low_res, scores = self._decode(features, tensors, False)
        if float(scores[0, 0]) < unsure_below:
            return self._decode(features, tensors, True)
        return low_res, scores

    def _predict(self, embedding: Embedding, prompts: Prompts,
                 decode: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, Any]]
                 ) -> Prediction:
        """The checks, the prompt tensors, ``decode`` in the decoder's context, the best mask."""
        import torch

        if not isinstance(embedding, Embedding):
            raise SamBackendError(
                "predict() needs the Embedding returned by encode(), got "
                f"{type(embedding).__name__}."
            )
        if not isinstance(prompts, Prompts):
            raise PromptError(
                f"predict() needs a sam_backends.Prompts value, got {type(prompts).__name__}."
            )
        self.check_embedding(embedding)
        prompts.validate_for_image(embedding.original_size)
        check_capabilities(self.spec, prompts)
        start = time.perf_counter()
        with torch.inference_mode():
            tensors = self._prompt_tensors(prompts, embedding)
            with self._decoder_context():
                low_res, scores = decode(embedding.features, tensors)
            low_res_np = self._returned_low_res(low_res)[0].float().cpu().numpy()
            scores_np = scores[0].float().cpu().numpy()
        # The sizes are all a mask needs: the source must not keep the image features alive.
        frame = dataclasses.replace(embedding, features={})
        mask_source = functools.partial(self._one_mask, low_res, frame)
        best = int(np.argmax(scores_np))
        ready = {best: mask_source(best)}  # the mask a user sees first; others on demand
        return Prediction(scores_np, low_res_np, time.perf_counter() - start, mask_source, ready)

    def _one_mask(self, low_res: Any, embedding: Embedding, index: int) -> np.ndarray:
        """Mask ``index`` of the low-res logits at the original resolution, bool H x W."""
        import torch

        with torch.inference_mode():
            return self._masks(low_res[:, index: index + 1], embedding)[0]

    # -- family-specific steps ---------------------------------------------------------------
    @abc.abstractmethod
    def _image_tensor(self, rgb: np.ndarray) -> Any:
        """RGB uint8 HxWx3 -> the model's input tensor 1x3xhxw on ``self.device``."""

    @abc.abstractmethod
    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """Model input -> the features stored in ``Embedding.features``."""

    @abc.abstractmethod
    def _prompt_tensors(self, prompts: Prompts, embedding: Embedding) -> Mapping[str, Any]:
        """Prompts in original-image pixels -> tensors in the model's input frame."""

    @abc.abstractmethod
    def _decode(
        self, features: Mapping[str, Any], tensors: Mapping[str, Any], multimask: bool
    ) -> tuple[Any, Any]:
        """Prompt encoder + mask decoder: (low-res logits 1xCx256x256, scores 1xC)."""

    @abc.abstractmethod
    def _upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """Low-res logits 1xCx256x256 -> logits 1xCxHxW at the original resolution."""

    def _masks(self, low_res: Any, embedding: Embedding) -> np.ndarray:
        """Boolean C x H x W masks at the original resolution (the fast path overrides it)."""
        return (self._upscale(low_res, embedding) > self.mask_threshold)[0].cpu().numpy()

    def _returned_low_res(self, low_res: Any) -> Any:
        """The low-res logits handed back to the caller (SAM 2 clamps them)."""
        return low_res
