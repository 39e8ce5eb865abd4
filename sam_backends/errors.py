"""Typed errors raised by the engine.

Every error carries a message written for the person using the tool: what happened and what to
do next. The UI shows ``str(error)`` as-is, so messages must never be key dumps or tracebacks.
"""

from __future__ import annotations


class SamBackendError(Exception):
    """Base class: anything the engine raises on purpose."""


class UnknownModelError(SamBackendError, KeyError):
    """A model id that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else "unknown model"


class BackendUnavailableError(SamBackendError):
    """The Python package a backend needs is not installed."""


class CheckpointError(SamBackendError):
    """Base class for checkpoint problems."""


class CheckpointMissingError(CheckpointError, FileNotFoundError):
    """The checkpoint file is absent and could not be downloaded."""


class CheckpointCorruptError(CheckpointError):
    """The file exists but is truncated, not a checkpoint, or belongs to another model."""


class CheckpointHashMismatchError(CheckpointCorruptError):
    """A file under an official catalogue name whose size or SHA-256 is not the official one.

    Raised before the file is read, so a damaged download never runs as a model that serves
    empty masks. The message says how to re-download it and how to use it as a custom file.
    """


class DownloadError(CheckpointError):
    """Downloading a checkpoint failed (offline, HTTP error, checksum mismatch, too slow)."""


class ModelOutputError(SamBackendError):
    """A model produced NaN or Inf: its result is refused instead of served as a blank mask.

    Almost always damaged or incompatible weights (or an overflow in a reduced precision).
    """


class ImageError(SamBackendError, ValueError):
    """The image cannot be decoded or converted to RGB."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit."""


class PromptError(SamBackendError, ValueError):
    """Prompts that are malformed, empty, or outside the image."""


class UnsupportedPromptError(PromptError):
    """A prompt kind the chosen model cannot take (for example mask refinement on GrabCut)."""
