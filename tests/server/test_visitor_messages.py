"""A visitor of a public app is told what happened and what to do, never the server's paths
or shell commands (those go to the server's log); the operator of a local app still gets them."""

from __future__ import annotations

import json
import logging

import pytest
from app_harness import running_app
from PIL import Image

from sam_backends import (
    CheckpointCorruptError,
    CheckpointMissingError,
    DownloadError,
    ImageError,
)
from workbench.config import AppConfig
from workbench.errors import describe

gradio_client = pytest.importorskip("gradio_client")

MISSING = CheckpointMissingError(
    "Checkpoint for sam-vit-b not found: /srv/app/checkpoints/sam_vit_b_01ec64.pth. Download it "
    "with: python -m sam_backends download sam-vit-b (or fetch https://example.org/b.pth into "
    "/srv/app/checkpoints yourself).")


@pytest.mark.parametrize("exc", [
    MISSING,
    DownloadError("Cannot download b.pth: offline mode is on. Unset it and run: python -m "
                  "sam_backends download sam-vit-b, or fetch it into /srv/app/checkpoints."),
    CheckpointCorruptError("/srv/app/checkpoints/sam_vit_b_01ec64.pth is damaged: run python -m "
                           "sam_backends download --force sam-vit-b"),
    ImageError("Image file /srv/data/private/cat.png cannot be read: permission denied."),
])
def test_visitors_never_see_server_paths_or_commands(exc, caplog):
    with caplog.at_level(logging.WARNING, logger="samwb.ui"):
        title, message, expected = describe(exc)
    assert expected and title
    assert "/srv" not in message and "python -m" not in message
    assert message.endswith(".")
    assert "/srv" in caplog.text  # the operator finds the details in the server's log


def test_a_visitor_still_learns_what_to_do():
    _, message, _ = describe(MISSING)
    assert "not on the server" in message and "pick another model" in message
    _, message, _ = describe(ImageError("Image file /srv/data/cat.png cannot be read."))
    assert message == "Image file cat.png cannot be read."


def test_the_operator_gets_the_whole_message():
    _, message, _ = describe(MISSING, operator=True)
    assert "/srv/app/checkpoints" in message and "python -m sam_backends download" in message


@pytest.mark.parametrize("changes, shows", [
    ({"host": "127.0.0.1"}, True),
    ({"host": "localhost"}, True),
    ({"host": "0.0.0.0"}, False),
    ({"host": "127.0.0.1", "share": True}, False),
    ({"host": "0.0.0.0", "operator_details": True}, True),
    ({"host": "127.0.0.1", "operator_details": False}, False),
])
def test_who_counts_as_the_operator(changes, shows, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    config = AppConfig(models=("grabcut",), default_model="grabcut", **changes)
    assert config.shows_operator_details is shows


def test_on_a_space_nobody_is_the_operator(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/workbench")
    assert AppConfig(models=("grabcut",), default_model="grabcut").shows_operator_details is False


def test_the_api_of_a_public_app_hides_paths(tmp_path):
    image = tmp_path / "scene.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(image)
    config = AppConfig(models=("grabcut", "sam2.1-tiny"), default_model="grabcut",
                       checkpoint_dir=tmp_path / "checkpoints", operator_details=False,
                       temp_dir=tmp_path / "temp")
    with running_app(config) as running:
        client = gradio_client.Client(running.url, verbose=False)
        with pytest.raises(Exception) as failure:
            client.predict(gradio_client.handle_file(str(image)), "sam2.1-tiny",
                           json.dumps({"points": [[10, 10]]}), api_name="/segment")
    text = str(failure.value)
    assert "not on the server" in text
    assert str(tmp_path) not in text and "python -m" not in text


def test_a_public_page_and_its_config_carry_no_server_path(tmp_path):
    """Issue 19 item 8: with ``operator_details=False`` neither the page HTML nor ``GET
    /config`` names the examples' folder, Gradio's cache in the temp folder, the repository,
    or a custom checkpoint's file; the examples still load, by name, from their own route."""
    import httpx

    from workbench.config import ASSETS_DIR

    examples = tmp_path / "examples"
    examples.mkdir()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(examples / "red.png")
    custom = tmp_path / "weights" / "my-private-finetune.pt"
    custom.parent.mkdir()
    custom.write_bytes(b"not read: the status only names it")
    config = AppConfig(models=("grabcut", "sam2.1-tiny"), default_model="sam2.1-tiny",
                       checkpoint_dir=tmp_path / "checkpoints", operator_details=False,
                       temp_dir=tmp_path / "temp", examples_dir=examples,
                       custom_checkpoints=(("sam2.1-tiny", custom),))
    with running_app(config) as running, httpx.Client(base_url=running.url,
                                                      timeout=30) as http:
        page, settings = http.get("/"), http.get("config")
        assert page.status_code == 200 and settings.status_code == 200
        gallery = [c for c in settings.json()["components"] if c["type"] == "gallery"]
        urls = [item["image"]["url"] for c in gallery for item in c["props"]["value"]]
        assert urls and all(url.endswith("/samwb/examples/red.png") for url in urls)
        served = http.get(urls[0])
        missing = http.get("samwb/examples/..%2Fapp.py")
    for text in (page.text, settings.text):
        for secret in (str(tmp_path), str(ASSETS_DIR.parent), "my-private-finetune"):
            assert secret not in text, secret
        assert "custom checkpoint" in text  # the status still says whose weights these are
    assert served.status_code == 200 and served.content == (examples / "red.png").read_bytes()
    assert missing.status_code == 404
