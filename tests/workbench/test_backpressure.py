"""Back-pressure: lanes refuse at once when full, deadlines stop waiting work, Gradio's queue is
bounded and a full queue answers "busy" with Retry-After; a burst of API calls against the real
app (127.0.0.1) is answered by refusals, not a pile-up."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from app_harness import free_port, running_app
from PIL import Image

from workbench.config import AppConfig
from workbench.lanes import Deadline, RequestTimeoutError, ServerBusyError, WorkLane

gradio_client = pytest.importorskip("gradio_client")


def hold(lane: WorkLane, release: threading.Event, entered: threading.Event) -> None:
    with lane.admit():
        entered.set()
        release.wait(10)


def test_a_full_lane_refuses_at_once_with_a_retry_estimate():
    lane = WorkLane("the test", max_running=1, max_waiting=1, typical_s=lambda: 3.0)
    release, entered = threading.Event(), threading.Event()
    runner = threading.Thread(target=hold, args=(lane, release, entered))
    runner.start()
    entered.wait(5)
    waiter = threading.Thread(target=hold, args=(lane, release, threading.Event()))
    waiter.start()
    for _ in range(100):
        if lane.waiting == 1:
            break
        time.sleep(0.01)
    start = time.monotonic()
    with pytest.raises(ServerBusyError) as refused:
        with lane.admit():
            pass
    assert time.monotonic() - start < 1.0  # refused, not queued
    assert refused.value.retry_after_s == 6  # two jobs ahead, 3 s each
    assert "busy" in str(refused.value) and "6 s" in str(refused.value)
    assert lane.refused == 1
    release.set()
    runner.join(5)
    waiter.join(5)
    assert lane.running == 0 and lane.waiting == 0


def test_a_waiting_job_stops_at_its_deadline():
    lane = WorkLane("the test", max_running=1, max_waiting=4)
    release, entered = threading.Event(), threading.Event()
    runner = threading.Thread(target=hold, args=(lane, release, entered))
    runner.start()
    entered.wait(5)
    with pytest.raises(RequestTimeoutError, match="limit of 0.2 s"):
        with lane.admit(Deadline(0.2, "The test request")):
            pass
    assert lane.waiting == 0
    release.set()
    runner.join(5)


def test_a_deadline_is_checked_between_steps():
    now = [0.0]
    deadline = Deadline(10, "The request", clock=lambda: now[0])
    deadline.check("step one")
    now[0] = 10.5
    with pytest.raises(RequestTimeoutError, match="while encoding"):
        deadline.check("encoding")


def test_the_app_bounds_gradios_queue(tmp_path):
    config = AppConfig(models=("grabcut",), default_model="grabcut", queue_max_size=7,
                       temp_dir=tmp_path)
    with running_app(config) as running:
        assert running.demo._queue.max_size == 7


def test_a_full_queue_answers_busy_with_retry_after(tmp_path):
    """A tiny app behind the same guard, one slow event and a queue of one: the third caller is
    refused at once with a message and Retry-After instead of waiting on heartbeats."""
    import gradio as gr

    import app as app_module

    config = AppConfig(models=("grabcut",), default_model="grabcut", temp_dir=tmp_path)
    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(lambda text: time.sleep(3) or text, box, box, api_name="slow")
    demo.queue(default_concurrency_limit=1, max_size=1)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(),
                            prevent_thread_lock=True, quiet=True,
                            app_kwargs={"middleware": [app_module.guard_middleware(config)]})
    try:
        join = url.rstrip("/") + "/gradio_api/queue/join"
        answers = []
        for n in range(3):
            body = {"data": ["x"], "fn_index": 0, "session_hash": f"session{n}"}
            answers.append(httpx.post(join, json=body, timeout=10))
        assert [a.status_code for a in answers[:2]] == [200, 200]
        busy = answers[2]
        assert busy.status_code == 503
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.json()["error"]["code"] == "busy" and "Retry in about" in busy.json()["detail"]
    finally:
        demo.close()


def test_a_burst_of_api_calls_is_refused_not_piled_up(tmp_path):
    config = AppConfig(models=("grabcut",), default_model="grabcut", api_max_waiting=2,
                       temp_dir=tmp_path)
    image = tmp_path / "scene.png"
    pixels = np.full((300, 400, 3), 40, np.uint8)
    pixels[100:200, 150:260] = (220, 200, 30)
    Image.fromarray(pixels).save(image)
    prompts = json.dumps({"points": [[200, 150]], "labels": [1]})
    with running_app(config) as running:

        def call(_: int) -> tuple[str, float]:
            client = gradio_client.Client(running.url, verbose=False)
            start = time.monotonic()
            try:
                client.predict(gradio_client.handle_file(str(image)), "grabcut", prompts,
                               api_name="/segment")
                return "ok", time.monotonic() - start
            except Exception as exc:  # noqa: BLE001 - the refusal arrives as the client's error
                return str(exc), time.monotonic() - start

        # Hold the lane's one running slot for a few seconds, as a long call would, so the
        # burst meets a full lane whatever the speed of this machine.
        release, entered = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold, args=(running.ctx.api_lane, release, entered))
        holder.start()
        entered.wait(5)
        lane = running.ctx.api_lane

        def release_when_refused() -> None:
            # The slot stays taken until ten calls were refused: they cannot have waited for it.
            end = time.monotonic() + 90
            while lane.refused < 10 and time.monotonic() < end:
                time.sleep(0.05)
            release.set()

        threading.Thread(target=release_when_refused).start()
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(call, range(12)))
        holder.join(10)
        busy = [seconds for text, seconds in results if "busy" in text]
        done = [text for text, _ in results if text == "ok"]
        others = [text for text, _ in results if text != "ok" and "busy" not in text]
        assert not others, others
        assert busy, "a burst beyond the lane's bound must be refused"
        assert len(busy) == 10 and len(done) == 2  # two waited and were served after
        assert lane.refused == 10
        assert running.ctx.api_lane.running == 0 and running.ctx.api_lane.waiting == 0


def test_a_call_whose_caller_disconnects_while_waiting_is_dropped(tmp_path):
    config = AppConfig(models=("grabcut",), default_model="grabcut", temp_dir=tmp_path)
    image = tmp_path / "scene.png"
    Image.new("RGB", (80, 60), (200, 40, 40)).save(image)
    with running_app(config) as running:
        url, lane, api = running.url, running.ctx.api_lane, running.demo.segment_api
        release, entered = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold, args=(lane, release, entered))
        holder.start()
        entered.wait(5)
        try:
            with open(image, "rb") as handle:
                uploaded = httpx.post(url + "gradio_api/upload",
                                      files={"files": ("scene.png", handle, "image/png")})
            path = uploaded.json()[0]
            config_json = httpx.get(url + "config").json()
            fn = next(d["id"] for d in config_json["dependencies"]
                      if d.get("api_name") == "segment")
            body = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "grabcut",
                             '{"box": [5, 5, 60, 50]}'], "fn_index": fn, "session_hash": "leaver"}
            assert httpx.post(url + "gradio_api/queue/join", json=body).status_code == 200
            with httpx.stream("GET", url + "gradio_api/queue/data",
                              params={"session_hash": "leaver"}, timeout=10) as stream:
                for line in stream.iter_lines():
                    if "process_starts" in line:
                        break
            for _ in range(40):  # the waiting call notices within a poll or two
                if lane.waiting == 1:
                    break
                time.sleep(0.1)
            deadline = time.monotonic() + 20  # Gradio checks the closed stream every second
            while api.abandoned == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert api.abandoned == 1
            assert lane.waiting == 0
        finally:
            release.set()
            holder.join(10)
