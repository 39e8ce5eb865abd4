"""The one interface every backend implements.

Backends are stateless between calls: ``encode`` returns an ``Embedding`` value and ``predict``
takes it back, so one loaded model serves many users and images at once.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

from .registry import ModelSpec
from .types import Embedding, Prediction, Prompts


class Backend(abc.ABC):
    """A loaded model behind the common encode/predict contract.

    Attributes:
        spec: the catalogue entry it was built from.
        device: torch device string ("cpu", "cuda", "mps"); "cpu" for GrabCut.
        precision: the resolved precision ("fp32" is the exact mode).
    """

    spec: ModelSpec
    device: str
    precision: str

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @abc.abstractmethod
    def encode(self, image: Any) -> Embedding:
        """Run the heavy image encoder once.

        Args:
            image: RGB uint8 HxWx3 array, or a PIL image (converted with ``images.to_rgb_array``).
        """

    @abc.abstractmethod
    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        """Run the light mask decoder for one object's prompts.

        Raises:
            PromptError: prompts empty, outside the image, or of a kind this model can't take.
        """

    def predict_single_or_candidates(self, embedding: Embedding, prompts: Prompts,
                                     unsure_below: float) -> Prediction:
        """One mask for ``prompts``; when its predicted IoU is below ``unsure_below``, the three
        candidates for the same prompts instead (``prompts.multimask`` is ignored).

        What a refining click of the page asks for (``workbench.segment.policy``). This default
        is the two ``predict`` calls; the fast SAM backends select both from one decode.

        Raises:
            PromptError: as ``predict``.
        """
        single = self.predict(embedding, dataclasses.replace(prompts, multimask=False))
        if float(single.scores[0]) < unsure_below:
            return self.predict(embedding, dataclasses.replace(prompts, multimask=True))
        return single

    def check_embedding(self, embedding: Embedding) -> None:
        """Refuse an embedding made by another model or precision (a silent mix-up otherwise)."""
        if embedding.model_id != self.model_id or embedding.precision != self.precision:
            from .errors import SamBackendError

            raise SamBackendError(
                f"This embedding was computed by {embedding.model_id} ({embedding.precision}) "
                f"but is being decoded by {self.model_id} ({self.precision}); encode the image "
                "with this model first."
            )


def array_nbytes(value: Any) -> int:
    """Bytes of memory held by a tensor, array, or a (nested) mapping/sequence of them.

    What is held, not what is shown: a view keeps its whole storage alive (a slice of a batch
    holds the batch), so each distinct storage counts once, in full. The embedding cache is
    bounded by this number, so it must be the memory that evicting the value gives back.
    """
    return _held_nbytes(value, set())


def _held_nbytes(value: Any, seen: set[tuple[str, int]]) -> int:
    if hasattr(value, "untyped_storage") and hasattr(value, "element_size"):
        storage = value.untyped_storage()
        key = ("torch", int(storage.data_ptr()))
        if key in seen:
            return 0
        seen.add(key)
        return int(storage.nbytes())
    if isinstance(value, np.ndarray):
        owner = value
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        key = ("numpy", id(owner))
        if key in seen:
            return 0
        seen.add(key)
        return int(owner.nbytes)
    if isinstance(value, dict):
        return sum(_held_nbytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_held_nbytes(v, seen) for v in value)
    return 0
