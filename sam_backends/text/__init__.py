"""Text prompts: "dog", "red car, bicycle" -> ``Instances`` (one mask per object found).

Two routes, one result type:

* **SAM 3** (model id ``sam3``, ``families/sam3``): a model that reads text itself. Encode once,
  then ``backend.segment_text(embedding, phrases, threshold)``; clicks and boxes on the same
  embedding go through ``backend.predict``.
* **A detector + any SAM** (``pipeline.DetectThenSegment``): OWLv2 (``detectors``) finds boxes
  for the phrases, a SAM 1 / SAM 2.1 backend turns each box into a mask.

    >>> from sam_backends import create_backend
    >>> from sam_backends.text import segment_text
    >>> sam3 = create_backend("sam3")                      # checkpoints/sam3/ (gated download)
    >>> instances = segment_text(sam3, sam3.encode(image), "red car, bicycle")

``phrases`` (limits and the unknown-script check) and ``hub`` (model folders and gated
downloads) import no torch; the model modules import it lazily. Random-weight folders for tests
are made by ``sam_backends.testing.text_models``.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import UnsupportedPromptError
from ..instances import Instances
from ..types import Embedding
from .phrases import DEFAULT_PHRASE_LIMITS, PhraseLimits, check_phrases_for_tokenizer, parse_phrases


def supports_text(backend: Any) -> bool:
    """True when ``backend`` reads text prompts itself (its capabilities say ``text``)."""
    spec = getattr(backend, "spec", None)
    return bool(spec is not None and spec.capabilities.text)


def segment_text(backend: Any, embedding: Embedding, phrases: str | Sequence[str],
                 threshold: float | None = None) -> Instances:
    """``backend.segment_text(embedding, phrases, threshold)``, or a clear refusal.

    Raises:
        UnsupportedPromptError: the model has no text capability (the message names the
            alternatives: SAM 3, or OWLv2 + this SAM through ``DetectThenSegment``).
    """
    if not supports_text(backend):
        name = getattr(getattr(backend, "spec", None), "display_name", type(backend).__name__)
        raise UnsupportedPromptError(
            f"{name} does not take text prompts. Use the sam3 model, or find boxes with a "
            "detector first: sam_backends.text.DetectThenSegment(load_owlv2(...), backend)."
        )
    if threshold is None:
        return backend.segment_text(embedding, phrases)
    return backend.segment_text(embedding, phrases, threshold)


def __getattr__(name: str) -> Any:
    """Model classes on first use (they import torch and transformers lazily anyway)."""
    if name in ("DetectThenSegment",):
        from .pipeline import DetectThenSegment

        return DetectThenSegment
    if name in ("Owlv2Detector", "Detections", "load_owlv2"):
        from . import detectors

        return getattr(detectors, name)
    if name in ("Sam3Backend",):
        from ..families.sam3.backend import Sam3Backend

        return Sam3Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PHRASE_LIMITS",
    "Detections",
    "DetectThenSegment",
    "Owlv2Detector",
    "PhraseLimits",
    "Sam3Backend",
    "check_phrases_for_tokenizer",
    "load_owlv2",
    "parse_phrases",
    "segment_text",
    "supports_text",
]
