"""Every engine error maps to a short, friendly message; bugs get a generic one, never a trace."""

from __future__ import annotations

import warnings

import pytest

from sam_backends import (
    CheckpointCorruptError,
    CheckpointMissingError,
    DownloadError,
    ImageError,
    ImageTooLargeError,
    PromptError,
    SamBackendError,
    UnknownModelError,
    UnsupportedPromptError,
)
from ui.feedback import guard
from workbench.errors import UserError, describe


@pytest.mark.parametrize("exc, title", [
    (ImageError("bad"), "Cannot open this image"),
    (PromptError("outside"), "Cannot use this prompt"),
    (UnsupportedPromptError("no logits"), "Cannot use this prompt"),
    (CheckpointMissingError("get it"), "Model not downloaded"),
    (DownloadError("offline"), "Download failed"),
    (CheckpointCorruptError("damaged"), "Model file damaged"),
    (UnknownModelError("which?"), "Unknown model"),
    (SamBackendError("other"), "Cannot do that"),
    (UserError("do this", "Title"), "Title"),
])
def test_engine_errors_keep_their_message_for_the_operator(exc, title):
    got_title, message, expected = describe(exc, operator=True)
    assert got_title == title and message == str(exc) and expected


def test_too_large_images_get_advice_for_users():
    exc = ImageTooLargeError("x.png is 9x9 = 81 pixels, more than the limit of 80. Resize it, "
                             "or raise the limit with env SAM_MAX_PIXELS.")
    assert describe(exc) == ("Image too large", "x.png is 9x9 = 81 pixels, more than the limit "
                             "of 80. Resize it and try again.", True)


def test_gradio_temp_paths_are_reduced_to_the_file_name():
    exc = ImageError("/tmp/gradio/0a1b2c/sub/holiday.png is not an image format that can be read")
    assert describe(exc)[1] == "holiday.png is not an image format that can be read"


def test_unexpected_errors_get_a_generic_message():
    title, message, expected = describe(ZeroDivisionError("secret internals"))
    assert not expected and "secret" not in message and "ZeroDivisionError" in message
    assert "still running" in message
    assert describe(MemoryError())[0] == "Out of memory"


def test_guard_returns_the_fallback_and_warns():
    calls = []

    @guard(lambda session, *rest: ("fallback", session))
    def handler(session, value):
        calls.append(value)
        raise PromptError("Point 0 is outside the image")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handler("s", 3) == ("fallback", "s")
    assert calls == [3]
    assert any("outside the image" in str(w.message) for w in caught)
    assert guard(lambda *a: None)(lambda x: x * 2)(4) == 8
