"""Every failure a user can cause or meet, turned into one short message: the only place that
maps engine errors to what the page shows.

``describe(exc)`` is pure (title, message) so it is unit-tested; the page shows it through
``ui.feedback`` (toasts, ``gr.Error``) and the HTTP routes through their own error shapes. No
traceback ever reaches a visitor; unexpected errors are logged with their traceback on the
server.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass

from sam_backends import (
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
)
from sam_backends.errors import UnsupportedPromptError
from workbench.lanes import RequestTimeoutError, ServerBusyError
from workbench.temp_root import TempFullError

log = logging.getLogger("samwb.ui")

# (exception type, toast title), most specific first.
_TITLES: tuple[tuple[type[BaseException], str], ...] = (
    (ServerBusyError, "Server busy"),
    (RequestTimeoutError, "Took too long"),
    (ImageError, "Cannot open this image"),
    (PromptError, "Cannot use this prompt"),
    (CheckpointMissingError, "Model not downloaded"),
    (DownloadError, "Download failed"),
    (CheckpointHashMismatchError, "Model file is not the official one"),
    (CheckpointCorruptError, "Model file damaged"),
    (UnknownModelError, "Unknown model"),
    (BackendUnavailableError, "Model unavailable"),
    (ModelOutputError, "Model gave invalid output"),
    (SamBackendError, "Cannot do that"),
)

_TEMP_PATH = re.compile(r"(/[^\s'\"]*?/gradio/[^\s'\"]*/)([^/\s'\"]+)")

class UserError(Exception):
    """A problem in what the user asked for, detected by the UI itself (message shown as-is)."""

    def __init__(self, message: str, title: str = "Cannot do that") -> None:
        super().__init__(message)
        self.title = title

def describe(exc: BaseException, operator: bool = False) -> tuple[str, str, bool]:
    """(title, message, expected) for an exception. ``expected`` is False for bugs: the message
    is then generic and the caller should log the traceback.

    ``operator``: the person is the one running the server (a local app): messages may name
    server paths and shell commands. Otherwise (a visitor of a public app) those are left out
    of the message and logged on the server instead.
    """
    title, message, expected = _describe(exc)
    if operator or not expected:
        return title, message, expected
    visitor = _for_visitor(exc, message)
    if visitor != message:
        log.warning("%s: %s", title, message.replace("\n", " "))
    return title, visitor, expected

def _describe(exc: BaseException) -> tuple[str, str, bool]:
    if isinstance(exc, UserError):
        return exc.title, str(exc), True
    if isinstance(exc, Refusal):  # already worded for a visitor by whoever refused
        return exc.title, exc.message, True
    if isinstance(exc, ImageTooLargeError):  # the env-var advice is for operators, not users
        return "Image too large", re.sub(r"Resize it.*$", "Resize it and try again.",
                                         _tidy(str(exc))), True
    for kind, title in _TITLES:
        if isinstance(exc, kind):
            return title, _tidy(str(exc)), True
    if isinstance(exc, TempFullError):
        return "Server storage full", str(exc), True
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ("Server disk full", "The server's disk is full, so nothing could be saved. "
                "Try again later; if it persists, tell the person who runs the server.", True)
    if isinstance(exc, MemoryError):
        return ("Out of memory",
                "The server ran out of memory. Try a smaller image or a smaller model.", True)
    return ("Something went wrong",
            f"Unexpected {type(exc).__name__}; the app is still running. Try again, or pick "
            "another model or image.", False)

# What a visitor is told instead of a message that names the server's files and commands.
_VISITOR_MESSAGES: tuple[tuple[type[BaseException], str], ...] = (
    (CheckpointMissingError, "This model's weights are not on the server. Use Download model "
                             "if it is offered, or pick another model."),
    (DownloadError, "The model could not be downloaded just now. Try again later, or pick "
                    "another model."),
    (CheckpointCorruptError, "This model's weights on the server are damaged, so it cannot run "
                             "(the details are in the server's log). Pick another model."),
    (BackendUnavailableError, "This model cannot run on this server (a package it needs is "
                              "missing). Pick another model."),
)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.@+\-]+){2,}/?")
_COMMAND = re.compile(r"`?(?:python3? -m|pip install) [\w.\-]+(?: [\w.\-=/]+)*`?")

def _for_visitor(exc: BaseException, message: str) -> str:
    for kind, text in _VISITOR_MESSAGES:
        if isinstance(exc, kind):
            return text
    cleaned = _COMMAND.sub("the command in the server's log", message)
    cleaned = _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], cleaned)
    return re.sub(r"\s{2,}", " ", cleaned).strip() or "The request could not be done."

def _tidy(message: str) -> str:
    """Hide Gradio's temporary upload folders: '/tmp/gradio/<hash>/cat.png' -> 'cat.png'."""
    return _TEMP_PATH.sub(lambda m: m.group(2), message).strip() or "The request failed."

def log_unexpected(exc: BaseException) -> None:
    log.error("unexpected error in a handler", exc_info=(type(exc), exc, exc.__traceback__))


# --- one refusal shape for every entrance -----------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What a caller is told when a request fails: the one shape behind every error body.

    ``server/`` turns it into a JSON response (``status``, ``Retry-After`` from
    ``retry_after_s``), ``ui/`` into a ``gr.Error`` (``title`` and ``message``). It is a value,
    not an exception, so the mapping below is pure and unit-tested.

    Attributes:
        status: the HTTP status (422 a prompt or image the caller can fix, 503 try later...).
        code: machine-readable, stable: busy, timeout, bad_prompt, too_many_points, ...
        message: what happened and what to do, safe to show a visitor.
        field: the request field at fault (``model``, ``image``, ``objects.1.points``) or None.
        title: a short heading for a toast.
        retry_after_s: seconds for ``Retry-After`` (503 busy) or None.
    """

    status: int
    code: str
    message: str
    field: str | None = None
    title: str = "Cannot do that"
    retry_after_s: int | None = None


class Refusal(Exception):
    """Base of the app's HTTP-shaped exceptions: one ``Failure`` carried by an exception.

    ``LiveError``, ``RestError``, ``AuthError``, ``JobError`` and ``FetchError`` are subclasses
    that keep their own constructor signatures (callers and tests use them) but store the four
    fields here, once.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after_s: int | None = None, title: str = "Cannot do that") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s
        self.title = title

    @property
    def failure(self) -> Failure:
        return Failure(self.status, self.code, self.message, self.field, self.title,
                       self.retry_after_s)

    @classmethod
    def of(cls, failure: Failure) -> Refusal:
        """The ``Failure`` raised as an exception (this class, base signature)."""
        return Refusal(failure.status, failure.code, failure.message, failure.field,
                       failure.retry_after_s, failure.title)


# (exception type, status, code, default field), most specific first. Everything a use case
# can raise maps here, once; an entrance only chooses how to show the ``Failure``.
_FAILURES: tuple[tuple[type[BaseException], int, str, str | None], ...] = (
    (ServerBusyError, 503, "busy", None),
    (RequestTimeoutError, 504, "timeout", None),
    (UnsupportedPromptError, 422, "unsupported", "objects"),
    (PromptError, 422, "bad_prompt", "objects"),
    (UserError, 422, "bad_prompt", None),
    (ImageTooLargeError, 422, "image_too_large", "image"),
    (ImageError, 422, "bad_image", "image"),
    (UnknownModelError, 422, "unknown_model", "model"),
    (CheckpointError, 503, "model_unavailable", "model"),
    (BackendUnavailableError, 503, "model_unavailable", "model"),
    (ModelOutputError, 500, "model_output", "model"),
    (MemoryError, 507, "out_of_memory", None),
)


def failure_of(exc: BaseException, operator: bool = False, field: str | None = None) -> Failure:
    """The ``Failure`` for any exception: the one mapping of engine and lane errors.

    ``operator`` as in ``describe``; ``field`` overrides the table's default field (e.g.
    ``objects.2`` for the third object). Unexpected exceptions are logged with their traceback
    and answered 500 ``internal`` with a message that names nothing of the server.
    """
    if isinstance(exc, Refusal):
        return exc.failure
    title, message, expected = describe(exc, operator)
    if not expected:
        log_unexpected(exc)
        return Failure(500, "internal", message, None, title)
    if isinstance(exc, OSError) and (isinstance(exc, TempFullError)
                                     or exc.errno == errno.ENOSPC):
        return Failure(507, "storage_full", message, field, title, 60)
    for kind, status, code, default_field in _FAILURES:
        if isinstance(exc, kind):
            retry = getattr(exc, "retry_after_s", None) if kind is ServerBusyError else None
            return Failure(status, code, message, field or default_field, title, retry)
    return Failure(422, "failed", message, field, title)
