"""Start the real app in-process for API and browser tests.

    config = app_config(sam1_small, sam2_small, tmp_path)   # grabcut + two random-weight models
    with running_app(config) as running:
        client = Client(running.url)                        # or a Playwright page

The server binds 127.0.0.1 on a free port (``prevent_thread_lock=True``) and is closed on exit.
No network is used: while it runs, ``SAM_OFFLINE=1`` makes any checkpoint download fail at once
(restored afterwards, so other tests are unaffected), and Gradio's analytics are off.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_config(sam1: Any, sam2: Any, checkpoint_dir: Path, **changes: Any):
    """An ``AppConfig`` offering grabcut, sam2.1-tiny (absent: its folder is empty) and the two
    random-weight test models (``RandomCheckpoint`` fixtures from conftest), on the CPU in
    exact fp32, with the SAM 2 test model as the default."""
    from workbench.config import AppConfig, ExtraModel

    values = dict(
        models=("grabcut", "sam2.1-tiny"),
        extra_models=(ExtraModel(sam2.spec, sam2.path), ExtraModel(sam1.spec, sam1.path)),
        default_model=sam2.spec.model_id,
        device="cpu",
        precision="fp32",
        checkpoint_dir=checkpoint_dir,
        cache_bytes="1GiB",
    )
    values.update(changes)
    return AppConfig(**values)


@dataclass
class RunningApp:
    url: str
    demo: Any

    @property
    def ctx(self) -> Any:
        return self.demo.ctx


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Set ``SAM_OFFLINE=1`` for the duration, then restore the previous value."""
    previous = os.environ.get("SAM_OFFLINE")
    os.environ["SAM_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SAM_OFFLINE", None)
        else:
            os.environ["SAM_OFFLINE"] = previous


@contextlib.contextmanager
def running_app(config: Any) -> Iterator[RunningApp]:
    import app

    with offline():
        demo = app.build_demo(config)
        _, url, _ = app.launch(demo, server_name="127.0.0.1", server_port=free_port(),
                               prevent_thread_lock=True, quiet=True, share=False)
        try:
            yield RunningApp(url.rstrip("/") + "/", demo)
        finally:
            demo.close()
            demo.ctx.close()
