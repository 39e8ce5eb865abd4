"""Every README snippet and command, run as written by a new user would: after ``pip install``,
from a folder outside the repository, with no network.

* Each ```python block runs with the installed venv's Python (``installed``, tests/project/
  conftest.py) as a script in a temporary folder that holds the files it names (photo.jpg,
  cars.jpg, clip.mp4, medsam_vit_b.pth: generated, never copied from ../shared). Weights are
  random at full size (SAM 2.1 tiny, SAM ViT-B) through README's ``SAM_CHECKPOINT_<ID>``; SAM 3
  and OWLv2 are reduced random transformers folders (``SAM_CHECKPOINT_SAM3`` and
  ``$SAM_CHECKPOINT_DIR/owlv2-base-patch16-ensemble/``): at full size SAM 3 alone is 3.4 GB and
  a minute per encode here. ``SAM_OFFLINE=1`` and ``HF_HUB_OFFLINE=1`` throughout.
* The snippets that talk to a running app (``gradio_client``, the REST example and its ``sh``
  twin) use the app that README's own ``samwb --models sam2.1-tiny,grabcut`` starts, on a free
  loopback port (``--port`` added), with a key made by ``samwb-keys create``.
* Every line of the ```bash blocks is either run (``RUN``: offline and quick), done by a
  fixture (``BY_FIXTURE``), or listed with the reason it is not run here (``NOT_RUN``); a new
  line fails ``test_every_bash_line_is_accounted_for`` until it is placed.

The runs are marked slow: 5 to 8 minutes on 2 shared CPU cores (8 min 2 s measured under
load), most of it Everything's 32 x 32 grid on the full-size model (80-175 s), the video snippet
(13 tracked frames, 100-150 s) and the evaluate command (45-85 s). The two checks that every
snippet and bash line is accounted for stay in the default run.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)
SH_SNIPPETS = re.findall(r"```sh\n(.*?)```", README, re.S)
SNIPPET_TIMEOUT_S = 900

def bash_lines() -> list[str]:
    """README's ```bash commands, one per entry: continuations joined, comments dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in re.sub(r"\\\n\s*", "", block).splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if command:
                lines.append(command)
    return lines


# --- the bash lines ----------------------------------------------------------------------------

LIST_OUTPUT = ("sam2.1-tiny", "sam-vit-b", "grabcut", "sam3")
RUN = {  # line -> texts its output must hold (``python app.py`` lines run in a copy of the sources)
    "samwb-models list": LIST_OUTPUT,
    "python -m sam_backends list": LIST_OUTPUT,
    "python app.py --help": ("--host", "--port", "--models", "--checkpoint-dir", "--checkpoint",
                             "--cache-bytes", "--max-file-size", "--max-image-pixels",
                             "--max-points"),
}
SERVER_LINE = "samwb --models sam2.1-tiny,grabcut"
EVALUATE_LINE = ("python -m sam_backends.evaluate --models sam-vit-b sam2.1-tiny grabcut "
                 "--images data/images --masks data/masks --out results/")
BY_FIXTURE = {
    "pip install .": "`installed` builds the wheel from a copy and installs it (--no-deps)",
    SERVER_LINE: "`app_server` runs it with `--port <free port>` added, for the API snippets",
    EVALUATE_LINE: "`test_evaluate_command` runs it on a generated image and mask",
}
NETWORK = "downloads from PyPI, PyTorch's index or the checkpoints' URLs"
SERVES = ("serves until stopped; the app is started once, by `samwb --models sam2.1-tiny,grabcut`"
          " (`app_server`)")
NOT_RUN = {
    "pip install -r requirements.txt": NETWORK,
    "pip install torch==2.14.1 torchvision==0.29.2 --index-url https://download.pytorch.org/whl/cpu":
        NETWORK,
    "pip install setuptools": NETWORK,
    "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0": NETWORK,
    'pip install ".[video,text]"': NETWORK,
    "samwb-models download sam2.1-tiny": NETWORK,
    "python -m sam_backends download sam2.1-tiny sam-vit-b": NETWORK,
    "python app.py": SERVES,
    "python app.py --models sam2.1-tiny,sam-vit-b,grabcut --device cpu --cache-bytes 2GiB": SERVES,
    "python app.py --checkpoint sam-vit-b=medsam_vit_b.pth": SERVES + "; the same custom file "
        "is loaded by the create_backend snippet",
    "SAM_CHECKPOINT_SAM_VIT_B=medsam_vit_b.pth python app.py": SERVES,
    "python examples/llm_client.py --image dog.jpg --object \"the dog\" --out dog.png "
    "--llm-url https://api.openai.com/v1 --llm-model gpt-4o-mini":
        "asks api.openai.com; tests/project/test_examples.py runs it against a stub LLM",
    "docker build -t samwb:cpu .": "needs Docker; tests/project/test_dockerfile.py checks the file",
    "docker build --build-arg VARIANT=cuda -t samwb:cuda .": "needs Docker",
    "docker run -p 7860:7860 -v samwb-checkpoints:/data/checkpoints samwb:cpu": "needs Docker",
    "docker run --gpus all -p 7860:7860 -v samwb-checkpoints:/data/checkpoints samwb:cuda":
        "needs Docker and a GPU",
    "docker run --rm -v samwb-checkpoints:/data/checkpoints samwb:cpu python -m sam_backends "
    "download sam2.1-tiny": "needs Docker and the network",
    "pip install -r requirements.txt -r tests/requirements.txt": NETWORK,
    "sudo apt-get install chromium fonts-dejavu-core": "installs system packages",
    "python -m pytest -q": "the whole test run, this test among it",
    "python benchmarks/bench_load.py": "a benchmark of many minutes, not part of the tests",
    "python benchmarks/bench_memory.py": "a benchmark of many minutes, not part of the tests",
    "python app.py --project ~/data/street": SERVES + "; tests/browser/test_browser_projects.py "
        "serves a project the same way",
}
LABEL_LINE = 'samwb label ~/data/street --text "car, person" --model sam2.1-tiny'
PROJECT_LINES = (  # run in this order on a generated ~/data/street (``test_project_commands``)
    LABEL_LINE,
    "samwb export ~/data/street --format coco --out ~/data/street-coco",
    "samwb export ~/data/street --format yolo --out ~/data/street-yolo --status done",
    "samwb import ~/data/street --format labelme ~/data/street-labelme",
)
BY_FIXTURE.update({line: "`test_project_commands` runs it on a generated project in ~/data"
                   for line in PROJECT_LINES})


def test_every_bash_line_is_accounted_for():
    lines = bash_lines()
    unplaced = [line for line in lines if line not in RUN | BY_FIXTURE | NOT_RUN]
    assert not unplaced, ("README has bash lines this test neither runs nor explains: add each "
                          f"to RUN, BY_FIXTURE or NOT_RUN: {unplaced}")
    gone = [line for line in (*RUN, *BY_FIXTURE, *NOT_RUN) if line not in lines]
    assert not gone, f"no longer in README (remove them here): {gone}"


@pytest.mark.slow
@pytest.mark.parametrize("line", list(RUN))
def test_a_readme_command_runs_as_written(line, installed, source_copy, tmp_path):
    cwd = source_copy if line.startswith("python app.py") else tmp_path
    result = installed.run(line, cwd, HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    missing = [text for text in RUN[line] if text not in result.stdout]
    assert not missing, f"{line!r} printed no {missing}:\n{result.stdout}"


# --- what the snippets need --------------------------------------------------------------------

def snippet_with(marker: str) -> str:
    """The one Python snippet of README holding ``marker``."""
    (snippet,) = [s for s in PYTHON_SNIPPETS if marker in s]
    return snippet


MARKERS = {  # a text only that snippet holds -> the test that runs it
    'checkpoint="medsam_vit_b.pth"': "test_custom_checkpoint_snippet",
    "backend.encode(image)": "test_engine_snippet",
    "exports.write_rle_json(": "test_video_snippet",
    "create_text_video_model(": "test_words_video_snippet",
    "segment_everything(": "test_everything_snippet",
    "segment_text(": "test_text_snippet",
    "gradio_client": "test_gradio_client_snippet",
    "/v1/segment": "test_rest_snippet",
}


def test_every_python_snippet_is_run():
    for index, snippet in enumerate(PYTHON_SNIPPETS):
        claimed = [marker for marker in MARKERS if marker in snippet]
        assert len(claimed) == 1, (f"README snippet {index} (starting {snippet[:60]!r}) is "
                                   f"claimed by {claimed}: give it one marker in MARKERS")
    for marker, test in MARKERS.items():
        assert test in globals(), test
        snippet_with(marker)  # exactly one snippet each


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The user's folder, outside the repository, with the media the snippets name."""
    import av
    from PIL import Image

    from sam_backends.testing.random_models import synthetic_image

    folder = tmp_path_factory.mktemp("readme-user")
    assert not folder.is_relative_to(ROOT)
    Image.fromarray(synthetic_image(480, 640, seed=1)).save(folder / "photo.jpg", quality=90)
    Image.fromarray(synthetic_image(240, 320, seed=2)).save(folder / "cars.jpg", quality=90)
    # 26 frames at 10 fps: stride 2 keeps 13, so the snippet's frame 12 exists.
    with av.open(str(folder / "clip.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 192, "yuv420p"
        base = synthetic_image(192, 256, seed=3)
        for index in range(26):
            frame = np.roll(base, 2 * index, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return folder


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("readme-weights")


@pytest.fixture(scope="module")
def sam2_tiny(weights_dir) -> Path:
    """A random-weight full-size SAM 2.1 tiny in the official format (a custom file)."""
    from sam_backends.registry import get_spec
    from sam_backends.testing.random_models import write_random_checkpoint

    return write_random_checkpoint(get_spec("sam2.1-tiny"), weights_dir / "tiny-random.pt")


@pytest.fixture(scope="module")
def vit_b(weights_dir) -> Path:
    """A random-weight full-size SAM ViT-B in the official format (375 MB)."""
    from sam_backends.registry import get_spec
    from sam_backends.testing.random_models import write_random_checkpoint

    return write_random_checkpoint(get_spec("sam-vit-b"), weights_dir / "vit-b-random.pth")


@pytest.fixture(scope="module")
def text_models(weights_dir) -> dict[str, str]:
    """Reduced random SAM 3 and OWLv2 folders, and the environment that points at them."""
    from sam_backends.testing.text_models import (
        small_owlv2_config,
        small_sam3_video_config,
        write_random_owlv2,
        write_random_sam3,
    )
    from sam_backends.text import hub

    sam3 = write_random_sam3(weights_dir / "my-sam3", small_sam3_video_config())
    write_random_owlv2(weights_dir / hub.OWLV2.local_name, small_owlv2_config())
    return {"SAM_CHECKPOINT_SAM3": str(sam3), "SAM_CHECKPOINT_DIR": str(weights_dir)}


def run_snippet(installed, workdir: Path, snippet: str, name: str, *args: str,
                **env: str) -> subprocess.CompletedProcess:
    """Save ``snippet`` as ``name`` in ``workdir`` and run it there with the venv's Python."""
    (workdir / name).write_text(snippet, encoding="utf-8")
    result = installed.run([installed.python, name, *args], workdir, SNIPPET_TIMEOUT_S,
                           HOME=str(workdir), **env)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


# --- the engine snippets -----------------------------------------------------------------------

@pytest.mark.slow
def test_custom_checkpoint_snippet(installed, workdir, vit_b):
    (workdir / "medsam_vit_b.pth").symlink_to(vit_b)
    run_snippet(installed, workdir, snippet_with('checkpoint="medsam_vit_b.pth"'), "custom.py")


@pytest.mark.slow
def test_engine_snippet(installed, workdir, sam2_tiny):
    run_snippet(installed, workdir, snippet_with("backend.encode(image)"), "engine.py",
                SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny))


@pytest.mark.slow
def test_video_snippet(installed, workdir, sam2_tiny):
    run_snippet(installed, workdir, snippet_with("exports.write_rle_json("), "video.py",
                SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny))
    for name in ("overlay.mp4", "cutout.mp4", "masks.zip"):
        assert (workdir / name).stat().st_size > 0, name
    rle = json.loads((workdir / "masks.json").read_text())
    assert "dog" in json.dumps(rle)


@pytest.mark.slow
def test_everything_snippet(installed, workdir, sam2_tiny):
    result = run_snippet(installed, workdir, snippet_with("segment_everything("),
                         "everything.py", SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny))
    progress = result.stdout.split("\n")[-2]
    assert progress == "1024 / 1024", result.stdout  # 32 x 32 points, all decoded


@pytest.mark.slow
def test_text_snippet(installed, workdir, sam2_tiny, text_models):
    run_snippet(installed, workdir, snippet_with("segment_text("), "text.py",
                SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny), **text_models)


@pytest.mark.slow
def test_words_video_snippet(installed, workdir, text_models):
    run_snippet(installed, workdir, snippet_with("create_text_video_model("), "words_video.py",
                **text_models)


@pytest.mark.slow
def test_evaluate_command(installed, tmp_path, vit_b, sam2_tiny):
    from PIL import Image

    from sam_backends.testing.random_models import synthetic_image

    for folder in ("data/images", "data/masks"):
        (tmp_path / folder).mkdir(parents=True)
    Image.fromarray(synthetic_image(120, 160, seed=4)).save(tmp_path / "data/images/a.jpg")
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 255
    Image.fromarray(mask).save(tmp_path / "data/masks/a.png")
    result = installed.run(EVALUATE_LINE, tmp_path, SNIPPET_TIMEOUT_S, HOME=str(tmp_path),
                           SAM_CHECKPOINT_SAM_VIT_B=str(vit_b),
                           SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny))
    assert result.returncode == 0, result.stderr
    for name in ("results.csv", "results.json", "miou_vs_clicks.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    models = json.loads((tmp_path / "results" / "results.json").read_text())["models"]
    assert [(m["model_id"], m["images"], m["error"]) for m in models] == [
        ("sam-vit-b", 1, ""), ("sam2.1-tiny", 1, ""), ("grabcut", 1, "")]
    assert all(0.0 <= m["miou_1"] <= 1.0 for m in models), models


# --- the snippets that talk to the running app -------------------------------------------------

@pytest.fixture(scope="module")
def app_server(installed, workdir, sam2_tiny, tmp_path_factory):
    """README's ``samwb --models sam2.1-tiny,grabcut`` on a free loopback port, with a key from
    ``samwb-keys create``; yields ``(url, key)``."""
    import httpx
    from app_harness import free_port

    home = tmp_path_factory.mktemp("server")
    created = installed.run([installed.bin("samwb-keys"), "create", "--name", "me", "--file",
                             "keys.json"], home)
    assert created.returncode == 0, created.stderr
    (key,) = re.findall(r"^\s+(samwb_\S+)$", created.stdout, re.M)  # shown once
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [*shlex.split(SERVER_LINE), "--port", str(port)], cwd=home, stdout=log,
        stderr=subprocess.STDOUT,
        env=installed.env(HOME=str(home), SAMWB_API_KEYS_FILE=str(home / "keys.json"),
                          SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny)))
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (home / "server.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home / "server.log").read_text()
            time.sleep(0.5)
        yield url, key
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_gradio_client_snippet(installed, workdir, app_server):
    url, _ = app_server
    result = run_snippet(installed, workdir, snippet_with("gradio_client"), "client.py",
                         SAMWB_URL=url)
    score, rest = result.stdout.strip().split("\n")[-1].split(" ", 1)
    assert 0.0 <= float(score) <= 1.5 and "encode" in rest, result.stdout
    assert rest.rstrip().endswith(".png") and Path(rest.rsplit(" ", 1)[-1]).is_file()


@pytest.mark.slow
def test_rest_snippet(installed, workdir, app_server):
    url, key = app_server
    run_snippet(installed, workdir, snippet_with("/v1/segment"), "segment.py",
                "photo.jpg", "320", "240", SAMWB_URL=url, SAMWB_API_KEY=key)
    assert (workdir / "cutout.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_sh_snippet(installed, workdir, app_server):
    url, key = app_server
    (snippet,) = SH_SNIPPETS
    (workdir / "segment.sh").write_text(snippet, encoding="utf-8")
    result = installed.run(["sh", "segment.sh", "photo.jpg", "320", "240"], workdir,
                           SAMWB_URL=url, SAMWB_API_KEY=key)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["objects"][0]["mask"]["counts"], answer


@pytest.mark.slow
def test_project_commands(installed, tmp_path, sam2_tiny, text_models):
    """README's ``samwb label`` / ``export`` / ``import`` lines, as written, with HOME a temp
    folder holding ``data/street``: two images, one done with two objects, one new with one;
    random-weight SAM 2.1 tiny (full size) and a reduced OWLv2 read the text."""
    from PIL import Image

    from sam_backends.masks import encode_rle
    from workbench.projects.model import StoredObject
    from workbench.projects.store import ProjectStore

    street = tmp_path / "data" / "street"
    street.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (80, 60), (120, 130, 140)).save(street / name)
    masks = [np.zeros((60, 80), bool) for _ in range(3)]
    masks[0][5:20, 5:30] = masks[1][30:55, 40:70] = masks[2][10:40, 10:40] = True
    with ProjectStore.open(street, create=True, name="street") as store:
        car = store.classes()[0]
        a, b = store.page(0, 2)
        store.sync_objects(a.image_id, [StoredObject(a.image_id, i + 1, car.class_id,
                                                     encode_rle(m)) for i, m in
                                        enumerate(masks[:2])], [])
        store.sync_objects(b.image_id, [StoredObject(b.image_id, 1, car.class_id,
                                                     encode_rle(masks[2]))], [])
        store.set_status(a.image_id, "done")
    made = installed.run("samwb export ~/data/street --format labelme --out "
                         "~/data/street-labelme", tmp_path, HOME=str(tmp_path))
    assert made.returncode == 0, made.stderr
    weights = dict(SAM_CHECKPOINT_SAM2_1_TINY=str(sam2_tiny), **text_models)
    label, coco, yolo, imported = (installed.run(line, tmp_path, timeout=600,
                                                 HOME=str(tmp_path), **weights)
                                   for line in PROJECT_LINES)
    for result in (label, coco, yolo, imported):
        assert result.returncode == 0, result.stderr
    assert "Labelled 2 images, found" in label.stdout  # the summary (random weights: any count)
    with ProjectStore.open(street) as store:
        from_run = sum(1 for e in store.page(0, 2) for o in store.objects(e.image_id)
                       if o.run_key.startswith("run:") and o.mask().any())
        assert {c.name for c in store.classes()} >= {"car", "person"}
    assert f"Exported {3 + from_run} objects on 2 images" in coco.stdout
    assert "on 1 image " in yolo.stdout  # --status done: image a only
    from pycocotools.coco import COCO

    annotations = COCO(str(next((tmp_path / "data" / "street-coco").glob("*.json"))))
    assert len(annotations.getAnnIds()) == 3 + from_run
    assert sorted(p.name for p in (tmp_path / "data" / "street-yolo").rglob("*.txt")) == [
        "a.txt"]
    assert "Imported 3 objects" in imported.stdout  # the labelme export made before the run
    with ProjectStore.open(street) as store:
        a = store.page(0, 1)[0]
        mine = [o for o in store.objects(a.image_id) if o.source == "person"]
        assert len(mine) == 2  # the person's two, untouched by the run and the import
