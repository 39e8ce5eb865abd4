"""How a failure reaches the page: a toast (``warn``), a ``gr.Error`` for API callers
(``api_error``), or a handler that keeps the page consistent (``guard``).

The words come from ``workbench.errors.describe``, the one mapping of failures to messages;
this module only hands them to Gradio.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from workbench.errors import describe, failure_of, log_unexpected


def warn(exc: BaseException, operator: bool = False) -> None:
    """Show ``exc`` as a toast in the page (and log it when it is a bug).

    The title is repeated in the text because Gradio groups toasts under a generic heading.
    """
    import gradio as gr

    title, message, expected = describe(exc, operator)
    if not expected:
        log_unexpected(exc)
    gr.Warning(f"{title}: {message}", title=title)


def api_error(exc: BaseException, operator: bool = False) -> Exception:
    """A ``gr.Error`` carrying the friendly message (API callers get it as the exception)."""
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    failure = failure_of(exc, operator)  # the same mapping the HTTP routes answer with
    return gr.Error(failure.message, title=failure.title, print_exception=False)


def guard(fallback: Callable[..., Any], operator: bool = False
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a handler: on any exception, show a toast and return ``fallback(*args)``.

    The fallback gets the handler's positional arguments and returns the outputs to show
    (normally the unchanged session's view), so the page never keeps half-updated components.
    """

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                warn(exc, operator)
                return fallback(*args)

        return run

    return decorate
