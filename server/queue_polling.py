"""How often Gradio's idle queue wakes up: less often than Gradio's default, so an idle app rests.

Gradio's ``Queue`` polls for new events with ``asyncio.sleep(sleep_when_free)`` while nothing
runs, and for progress updates every ``progress_update_sleep_when_free``. On Linux and macOS
Gradio sets 1 ms and 10 ms (on Windows 50 ms and 100 ms): the server's event loop wakes about
1,100 times a second while nobody uses the app (``strace`` counted 12,855 ``epoll_wait`` calls
in 8 idle seconds). On a 2-core AVX2 EPYC the idle server thread used 7.4 % of a core that
way; with the values below, 2.1 %. That core is the one a click's decode, an encode or a
laptop's battery needs.

The price: a Gradio event (an upload, a side-panel refresh) that arrives while the queue is
idle waits up to ``FREE_POLL_S`` (5 ms on average) before it starts, on top of Gradio's ~80 ms
round trip. Clicks, boxes, hovers and REST calls do not go through the queue and are not
affected. Progress messages of long jobs go out every ``PROGRESS_POLL_S``, as on Windows.

The attributes are Gradio's own (not public API); when a Gradio version lacks them nothing is
changed and ``calm_queue_polling`` says so.
"""

from __future__ import annotations

from typing import Any

FREE_POLL_S = 0.01  # Gradio's default on Linux: 0.001
PROGRESS_POLL_S = 0.1  # Gradio's default on Linux: 0.01 (on Windows it uses 0.1)


def calm_queue_polling(demo: Any, free_s: float = FREE_POLL_S,
                       progress_s: float = PROGRESS_POLL_S) -> bool:
    """Set the idle polling intervals of ``demo``'s queue (after ``demo.queue()``); True when
    this Gradio's queue has both settings and they were set. A value is only ever raised:
    a Gradio whose defaults are already calmer keeps them."""
    queue = getattr(demo, "_queue", None)
    names = {"sleep_when_free": free_s, "progress_update_sleep_when_free": progress_s}
    if queue is None or not all(isinstance(getattr(queue, n, None), (int, float))
                                for n in names):
        return False
    for name, seconds in names.items():
        setattr(queue, name, max(float(getattr(queue, name)), float(seconds)))
    return True
