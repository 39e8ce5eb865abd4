"""The idle queue's polling intervals (``server.queue_polling``): raised on Gradio's own queue,
never lowered, and nothing changed on a queue without those settings."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from server.queue_polling import FREE_POLL_S, PROGRESS_POLL_S, calm_queue_polling


def test_gradios_own_queue_is_calmed():
    """The installed Gradio's queue has both settings (a rename would fail here) and they end
    at this module's values, above Gradio's Linux defaults."""
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    queue = demo._queue
    assert queue.sleep_when_free < FREE_POLL_S  # Gradio's default is busier than ours
    assert calm_queue_polling(demo) is True
    assert queue.sleep_when_free == FREE_POLL_S
    assert queue.progress_update_sleep_when_free == PROGRESS_POLL_S


def test_calmer_values_are_kept_and_missing_settings_change_nothing():
    calm = SimpleNamespace(sleep_when_free=0.05, progress_update_sleep_when_free=0.2)
    assert calm_queue_polling(SimpleNamespace(_queue=calm)) is True
    assert (calm.sleep_when_free, calm.progress_update_sleep_when_free) == (0.05, 0.2)
    partial = SimpleNamespace(sleep_when_free=0.001)
    assert calm_queue_polling(SimpleNamespace(_queue=partial)) is False
    assert partial.sleep_when_free == 0.001
    assert calm_queue_polling(SimpleNamespace()) is False
