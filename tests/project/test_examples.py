"""The programs in ``examples/``: the LLM client's strict parsing, and every example run as a
subprocess against a stub OpenAI-compatible server and the real app, all on 127.0.0.1.

The stub LLM answers ``POST /v1/chat/completions`` with canned texts, one per request, and
records what it was sent. The app runs GrabCut only (no weights) with one REST API key.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from app_harness import ROOT, free_port, running_app
from PIL import Image

EXAMPLES = ROOT / "examples"
RUN_TIMEOUT_S = 120
WIDTH, HEIGHT = 120, 80
OBJECT = (40, 20, 80, 60)  # x0, y0, x1, y1 of the bright square in the test image


def load_llm_client():
    spec = importlib.util.spec_from_file_location("llm_client", EXAMPLES / "llm_client.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["llm_client"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


llm_client = load_llm_client()


# --- the strict parser -----------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, values", [
    ('{"box": [10, 5, 50, 40]}', "box", (10, 5, 50, 40)),
    ('{"box": [10.5, 5, 120, 80], "point": null}', "box", (10.5, 5, 120, 80)),
    ('{"point": [0, 79.5]}', "point", (0, 79.5)),
    (' {"point": [119, 0], "box": null}\n', "point", (119, 0)),
])
def test_valid_answers_are_parsed(text, kind, values):
    location = llm_client.parse_location(text, WIDTH, HEIGHT)
    assert (location.kind, location.values) == (kind, values)


@pytest.mark.parametrize("text, reason", [
    ('```json\n{"box": [10, 5, 50, 40]}\n```', "not one json object"),
    ('The box is {"box": [10, 5, 50, 40]}', "not one json object"),
    ('[10, 5, 50, 40]', "not an object"),
    ('{"box": [10, 5, 50, 40], "label": "dog"}', "label"),
    ('{"box": [10, 5, 50, 40], "point": [20, 20]}', "exactly one"),
    ('{"point": null, "box": null}', "exactly one"),
    ('{}', "exactly one"),
    ('{"box": ["10", 5, 50, 40]}', "box.0"),
    ('{"point": [true, 5]}', "point.0"),
    ('{"box": [10, 5, 50]}', "box"),
    ('{"point": [NaN, 5]}', "nan is not a number"),
    ('{"point": [10, 5], "point": [11, 5]}', "duplicate key"),
    ('{"point": [120, 5]}', "outside the 120x80 image"),
    ('{"point": [-1, 5]}', "outside"),
    ('{"box": [10, 5, 121, 40]}', "reaches outside"),
    ('{"box": [50, 5, 10, 40]}', "inverted"),
    ('{"box": [10, 5, 10.5, 40]}', "empty"),
])
def test_invalid_answers_are_refused_with_the_reason(text, reason):
    with pytest.raises(llm_client.AnswerError) as caught:
        llm_client.parse_location(text, WIDTH, HEIGHT)
    assert reason in str(caught.value).lower()
    assert "\n" not in str(caught.value)


def test_the_schema_asks_for_exactly_the_parsed_keys():
    schema = llm_client.answer_schema(WIDTH, HEIGHT)
    assert set(schema["properties"]) == set(schema["required"]) == {"point", "box"}
    assert schema["additionalProperties"] is False


# --- a stub OpenAI-compatible server ---------------------------------------------------------

class StubLlm:
    """``POST /v1/chat/completions`` -> the next canned answer (a text, or an int: an HTTP
    error with that status); ``requests`` holds the headers and JSON bodies received."""

    def __init__(self) -> None:
        self.answers: list[str | int] = []
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body})
                answer = stub.answers.pop(0) if stub.answers else 500
                if self.path != "/v1/chat/completions":
                    answer = 404
                if isinstance(answer, int):
                    status, reply = answer, {"error": {"message": "stub says no",
                                                       "type": "invalid_request_error"}}
                else:
                    status, reply = 200, {"id": "chatcmpl-stub", "object": "chat.completion",
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant",
                                                                   "content": answer}}]}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_llm() -> Iterator[StubLlm]:
    stub = StubLlm()
    try:
        yield stub
    finally:
        stub.close()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dark 120x80 PNG with a bright square at ``OBJECT``."""
    pixels = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
    x0, y0, x1, y1 = OBJECT
    pixels[y0:y1, x0:x1] = (230, 200, 40)
    path = tmp_path_factory.mktemp("examples") / "square.png"
    Image.fromarray(pixels).save(path)
    return path


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the variables the examples read, plus ``values``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLM_", "SAMWB_")) and k != "OPENAI_API_KEY"}
    env.update(values)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def llm_args(stub: StubLlm, image: Path, out: Path, api_url: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / "llm_client.py"), "--image", str(image),
            "--object", "the yellow square", "--llm-url", stub.url, "--llm-key", "sk-stub",
            "--llm-model", "stub-vision", "--api-url", api_url, "--out", str(out)]


def test_llm_client_fails_in_one_line_after_two_invalid_answers(stub_llm, image_file, tmp_path):
    """No app needed: the run ends before any segment call."""
    stub_llm.answers = ['{"box": [10, 5, 500, 40]}', "Sure! The square is in the middle."]
    out = tmp_path / "cut.png"
    unused = f"http://127.0.0.1:{free_port()}"
    done = run(llm_args(stub_llm, image_file, out, unused), tmp_path, clean_env())
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid twice" in lines[0]
    assert "not one json object" in lines[0].lower()
    assert not out.exists() and len(stub_llm.requests) == 2
    retry = stub_llm.requests[1]["body"]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"box": [10, 5, 500, 40]}'}
    assert "reaches outside the 120x80 image" in retry[-1]["content"]


def test_llm_client_reports_llm_http_errors_in_one_line(stub_llm, image_file, tmp_path):
    stub_llm.answers = [401]
    unused = f"http://127.0.0.1:{free_port()}"
    done = run(llm_args(stub_llm, image_file, tmp_path / "cut.png", unused), tmp_path,
               clean_env())
    assert done.returncode == 1
    assert done.stderr.strip() == "error: The LLM endpoint answered HTTP 401: stub says no"


def test_llm_client_reports_a_missing_image_in_one_line(stub_llm, tmp_path):
    done = run(llm_args(stub_llm, tmp_path / "nope.png", tmp_path / "cut.png", "http://x"),
               tmp_path, clean_env())
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "nope.png cannot be read" in done.stderr and not stub_llm.requests


# --- against the real app --------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_with_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The real app (GrabCut only) with its REST API and one key: (url, key)."""
    keys = pytest.importorskip("server.security.keys", reason="the REST API (ui/rest) is not there")
    from workbench.config import AppConfig

    token, entry = keys.new_key("examples", frozenset({"segment"}))
    key_file = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_key_file(key_file, [entry])
    config = AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=None,
                       api_keys_file=key_file)
    with running_app(config) as running:
        yield running.url.rstrip("/"), token


def read_cutout(path: Path) -> np.ndarray:
    cutout = np.asarray(Image.open(path))
    assert cutout.shape == (HEIGHT, WIDTH, 4)
    return cutout


def assert_square_cut_out(cutout: np.ndarray) -> None:
    x0, y0, x1, y1 = OBJECT
    alpha = cutout[..., 3]
    assert alpha[(y0 + y1) // 2, (x0 + x1) // 2] == 255 and alpha[2, 2] == 0
    assert alpha[y0:y1, x0:x1].mean() > 200 and alpha.mean() < 0.5 * 255


@pytest.mark.parametrize("answers", [
    ['{"box": [36, 16, 84, 64], "point": null}'],
    ['{"box": [36, 16, 84, 64], "point": [60, 40]}', '{"point": [60, 40]}'],  # retried once
], ids=["valid", "invalid-then-valid"])
def test_llm_client_cuts_out_what_the_llm_located(stub_llm, app_with_key, image_file, tmp_path,
                                                  answers):
    url, key = app_with_key
    stub_llm.answers = list(answers)
    out = tmp_path / "cut.png"
    done = run(llm_args(stub_llm, image_file, out, url), tmp_path, clean_env(SAMWB_API_KEY=key))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Saved {out}: the yellow square at ")
    assert_square_cut_out(read_cutout(out))
    first = stub_llm.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-stub"
    body = first["body"]
    assert body["model"] == "stub-vision"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    parts = body["messages"][-1]["content"]
    assert "120 pixels wide and 80 pixels high" in parts[0]["text"]
    sent = parts[1]["image_url"]["url"]
    assert base64.b64decode(sent.split(",", 1)[1]) == image_file.read_bytes()
    assert len(stub_llm.requests) == len(answers)


def test_llm_client_reports_a_refused_api_key_in_one_line(stub_llm, app_with_key, image_file,
                                                          tmp_path):
    url, _ = app_with_key
    stub_llm.answers = ['{"point": [60, 40]}']
    done = run(llm_args(stub_llm, image_file, tmp_path / "cut.png", url), tmp_path,
               clean_env(SAMWB_API_KEY="samwb_00000000_" + "A" * 43))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: The segment API answered HTTP 401")


def test_segment_py_saves_the_cutout(app_with_key, image_file, tmp_path):
    url, key = app_with_key
    done = run([sys.executable, str(EXAMPLES / "segment.py"), str(image_file), "60", "40"],
               tmp_path, clean_env(SAMWB_URL=url, SAMWB_API_KEY=key))
    assert done.returncode == 0, done.stderr
    assert read_cutout(tmp_path / "cutout.png")[40, 60, 3] == 255


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("base64")),
                    reason="segment.sh needs curl and base64")
def test_segment_sh_prints_the_masks(app_with_key, image_file, tmp_path):
    url, key = app_with_key
    done = run(["sh", str(EXAMPLES / "segment.sh"), str(image_file), "60", "40"], tmp_path,
               clean_env(SAMWB_URL=url, SAMWB_API_KEY=key))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    mask = answer["objects"][0]["mask"]
    assert mask["size"] == [HEIGHT, WIDTH] and answer["objects"][0]["cutout"] is None


def test_readme_quotes_the_short_examples():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("segment.sh", "segment.py"):
        assert (EXAMPLES / name).read_text(encoding="utf-8") in readme, name


def test_mcp_flag_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python app.py --mcp" in readme and "/gradio_api/mcp/" in readme
