"""The one interface every backend implements.

Backends are stateless between calls: ``encode`` returns an ``Embedding`` value and ``predict``
takes it back, so one loaded model serves many users and images at once.
"""

from __future__ import annotations

import abc
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
    """Bytes held by a tensor, array, or a (nested) mapping/sequence of them."""
    if hasattr(value, "element_size") and hasattr(value, "nelement"):
        return int(value.element_size() * value.nelement())
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(array_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(array_nbytes(v) for v in value)
    return 0
