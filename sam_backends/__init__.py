"""Pluggable Segment Anything backends behind one encode/predict contract.

    >>> from sam_backends import create_backend, Prompts
    >>> backend = create_backend("sam2.1-tiny")
    >>> embedding = backend.encode(image)              # heavy, once per image
    >>> prediction = backend.predict(embedding, Prompts(points=[(120, 80)], labels=[1]))
    >>> prediction.masks.shape                         # (1, H, W) bool
"""

from .base import Backend
from .cache import EmbeddingCache
from .errors import (
    BackendUnavailableError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointHashMismatchError,
    CheckpointMissingError,
    DownloadError,
    ImageError,
    ImageTooLargeError,
    ModelOutputError,
    PromptError,
    SamBackendError,
    UnknownModelError,
    UnsupportedPromptError,
)
from .factory import ModelInfo, create_backend, list_models
from .instances import Instances
from .registry import CATALOGUE, DEFAULT_MODEL_ID, Capabilities, ModelSpec, get_spec, model_ids
from .types import Embedding, Prediction, Prompts

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CATALOGUE",
    "Capabilities",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointHashMismatchError",
    "CheckpointMissingError",
    "DEFAULT_MODEL_ID",
    "DownloadError",
    "Embedding",
    "EmbeddingCache",
    "ImageError",
    "ImageTooLargeError",
    "Instances",
    "ModelInfo",
    "ModelOutputError",
    "ModelSpec",
    "Prediction",
    "PromptError",
    "Prompts",
    "SamBackendError",
    "UnknownModelError",
    "UnsupportedPromptError",
    "create_backend",
    "get_spec",
    "list_models",
    "model_ids",
]
