"""The example photos in ``assets/``: painted by ``assets/make_examples.py`` (deterministic,
photo-sized, small JPEGs), and an operator's own folder given by ``examples_dir``."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from app_harness import ROOT
from PIL import Image

from ui.segment.view import list_examples
from workbench.config import ASSETS_DIR, AppConfig, parse_examples_dir

SIZES = {"table.jpg": (1600, 1067), "street.jpg": (1600, 1067), "parking.jpg": (1200, 1600)}
MAX_BYTES = 400 * 1024


def load_generator():
    spec = importlib.util.spec_from_file_location("make_examples",
                                                  ROOT / "assets" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_examples"] = module
    spec.loader.exec_module(module)
    return module


make_examples = load_generator()


@pytest.fixture(scope="module")
def painted() -> dict[str, np.ndarray]:
    """Each scene painted once, as the uint8 pixels ``save`` writes."""
    return {name: np.clip(np.rint(draw()), 0, 255).astype(np.uint8)
            for name, draw in make_examples.SCENES.items()}


def test_the_generator_paints_the_listed_scenes_at_photo_sizes(painted):
    assert set(painted) == set(SIZES)
    for name, pixels in painted.items():
        width, height = SIZES[name]
        assert pixels.shape == (height, width, 3), name
        assert pixels.std() > 25, f"{name} looks flat"  # several distinct objects, not a wash


def test_the_generator_is_deterministic(painted):
    again = np.clip(np.rint(make_examples.table()), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(again, painted["table.jpg"])


def test_committed_examples_are_the_generators_output(painted):
    """The files in assets/ are JPEGs of what the generator paints now (JPEG error only) and
    small enough for the repository."""
    for name, pixels in painted.items():
        path = ASSETS_DIR / name
        assert path.stat().st_size < MAX_BYTES, f"{name}: {path.stat().st_size} bytes"
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == SIZES[name]
            decoded = np.asarray(image.convert("RGB"), np.float32)
        error = np.abs(decoded - pixels.astype(np.float32)).mean()
        assert error < 3.0, f"{name} differs from the generator (mean error {error:.2f}): rerun " \
                            "python assets/make_examples.py"


def test_the_default_examples_are_the_painted_photos():
    assert AppConfig().examples_dir == ASSETS_DIR
    assert [p.name for p in list_examples(ASSETS_DIR)] == sorted(SIZES)  # not the video clip


def test_a_folder_given_by_config_is_listed(tmp_path):
    for name in ("b.png", "a.JPG", "c.webp", "notes.txt", "clip.mp4"):
        (tmp_path / name).write_bytes(b"")
    config = AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=tmp_path)
    assert [p.name for p in list_examples(config.examples_dir)] == ["a.JPG", "b.png", "c.webp"]
    assert list_examples(AppConfig(examples_dir=None).examples_dir) == []


def test_examples_dir_flag_values(tmp_path):
    assert parse_examples_dir(str(tmp_path)) == tmp_path
    assert parse_examples_dir("none") is None and parse_examples_dir("") is None
    with pytest.raises(ValueError, match="not a folder"):
        parse_examples_dir(str(tmp_path / "missing"))
