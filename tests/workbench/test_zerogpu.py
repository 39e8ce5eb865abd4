"""ZeroGPU support: ``spaces.GPU`` wraps the model work only on a ZeroGPU Space.

Off ZeroGPU, with the real ``spaces`` package installed, both our ``gpu_task`` and upstream's
decorator must hand back the very function (no fork, no pickling). On ZeroGPU the decorator is
stood in for by a fake module (the real one needs the Space's device API), to check what is
decorated and that results come back in host memory and picklable.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

from sam_backends import Embedding, Prompts
from workbench import zerogpu
from workbench.config import AppConfig, ExtraModel
from workbench.context import AppContext


def _task(x):
    return x + 1


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False),
                                             ("false", False), ("1", True), ("true", True),
                                             ("True", True), ("t", True)])
def test_zerogpu_is_recognised_as_spaces_does(value, expected):
    environ = {} if value is None else {zerogpu.ZERO_GPU_ENV: value}
    assert zerogpu.on_zerogpu(environ) is expected


def test_real_spaces_decorator_is_a_no_op_off_zerogpu():
    code = """
import spaces, sys
sys.path.insert(0, ".")
from workbench import zerogpu
def f(x): return x
assert spaces.GPU(f) is f and spaces.GPU(duration=30)(f) is f
assert zerogpu.gpu_task(f) is f and zerogpu.gpu_task(f, 30) is f
import importlib.metadata as m
print(m.version("spaces"))
"""
    pytest.importorskip("spaces", reason="spaces not installed (pip install '.[zerogpu]')")
    env = {k: v for k, v in __import__("os").environ.items() if k != zerogpu.ZERO_GPU_ENV}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.51.3"


def test_without_spaces_nothing_is_wrapped_even_on_zerogpu(monkeypatch):
    monkeypatch.setenv(zerogpu.ZERO_GPU_ENV, "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError
    assert not zerogpu.zerogpu_active()
    assert zerogpu.gpu_task(_task) is _task


class _FakeSpaces(types.ModuleType):
    """Records what ``spaces.GPU`` was asked to wrap, and marks the wrapper."""

    def __init__(self):
        super().__init__("spaces")
        self.calls = []

    def GPU(self, fn, duration=None):  # noqa: N802 (upstream's name)
        self.calls.append((fn.__name__, duration))

        def wrapped(*args, **kwargs):
            return fn(*args, **kwargs)

        wrapped.zerogpu = None
        return wrapped


@pytest.fixture
def fake_zerogpu(monkeypatch):
    fake = _FakeSpaces()
    monkeypatch.setenv(zerogpu.ZERO_GPU_ENV, "true")
    monkeypatch.setitem(sys.modules, "spaces", fake)
    return fake


def test_gpu_task_wraps_with_the_duration_on_zerogpu(fake_zerogpu):
    wrapped = zerogpu.gpu_task(_task, duration_s=12)
    assert wrapped is not _task and hasattr(wrapped, "zerogpu") and wrapped(1) == 2
    zerogpu.gpu_task(_task)
    assert fake_zerogpu.calls == [("_task", 12), ("_task", None)]


class _Tensor:
    """Stands in for a torch tensor: something with ``to`` and ``device``."""

    def __init__(self, device):
        self.device = device

    def to(self, device):
        return _Tensor(device)


def test_to_device_moves_nested_tensors_and_leaves_arrays():
    array = np.zeros(3)
    moved = zerogpu.to_device({"a": _Tensor("cuda"), "b": [_Tensor("cuda"), array],
                               "c": (_Tensor("cuda"),), "d": 4}, "cpu")
    assert moved["a"].device == "cpu" and moved["b"][0].device == "cpu"
    assert moved["b"][1] is array and moved["c"][0].device == "cpu" and moved["d"] == 4
    embedding = Embedding("m", "fp32", (2, 2), (2, 2), {"x": _Tensor("cuda")})
    assert zerogpu.embedding_to(embedding, "cpu").features["x"].device == "cpu"


def _image():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 20:40] = 200
    return image


def test_off_zerogpu_context_calls_the_model_directly(monkeypatch):
    monkeypatch.delenv(zerogpu.ZERO_GPU_ENV, raising=False)
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut"))
    try:
        assert not ctx.zerogpu
        assert ctx._encode_task == ctx._encode_now and ctx._predict_task == ctx._predict_now
        encoded = ctx.encode("grabcut", _image())
        prediction = ctx.predict("grabcut", encoded.embedding, Prompts(box=(18, 8, 42, 32)))
        assert prediction.mask(prediction.best_index).shape == (40, 60)
    finally:
        ctx.close()


def test_on_zerogpu_encode_and_predict_go_through_the_gpu_tasks(fake_zerogpu):
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut"))
    try:
        assert ctx.zerogpu
        assert [name for name, _ in fake_zerogpu.calls] == ["_encode_now", "_predict_now"]
        encoded = ctx.encode("grabcut", _image())
        again = ctx.encode("grabcut", _image())
        assert again.cached and again.embedding is encoded.embedding  # cached in this process
        prediction = ctx.predict("grabcut", encoded.embedding, Prompts(box=(18, 8, 42, 32)))
        # masks made in the GPU call (an array's __getitem__), not left to a closure
        assert isinstance(prediction.mask_source.__self__, np.ndarray)
        back = pickle.loads(pickle.dumps(prediction))  # what the worker sends must pickle
        assert back.mask(back.best_index).shape == (40, 60)
    finally:
        ctx.close()


@pytest.mark.parametrize("fixture", ["sam1_small", "sam2_small"])
def test_on_zerogpu_sam_embeddings_cross_pickling_and_give_the_same_masks(
        fixture, request, monkeypatch, tmp_path):
    checkpoint = request.getfixturevalue(fixture)
    model_id = checkpoint.spec.model_id
    prompts = Prompts(points=[(30, 20), (50, 35)], labels=[1, 0])

    def masks(on_zerogpu: bool):
        if on_zerogpu:
            monkeypatch.setenv(zerogpu.ZERO_GPU_ENV, "true")
            monkeypatch.setitem(sys.modules, "spaces", _FakeSpaces())
        ctx = AppContext(AppConfig(
            models=("grabcut",), extra_models=(ExtraModel(checkpoint.spec, checkpoint.path),),
            device="cpu", precision="fp32", checkpoint_dir=tmp_path, examples_dir=None))
        try:
            assert ctx.zerogpu is on_zerogpu
            embedding = ctx.encode(model_id, _image()).embedding
            if on_zerogpu:  # what the GPU worker would send back, and be sent again
                embedding = pickle.loads(pickle.dumps(embedding))
            prediction = ctx.predict(model_id, embedding, prompts)
            return pickle.loads(pickle.dumps(prediction)) if on_zerogpu else prediction
        finally:
            ctx.close()

    plain, lent = masks(False), masks(True)
    np.testing.assert_array_equal(plain.scores, lent.scores)
    np.testing.assert_array_equal(plain.masks, lent.masks)


def test_on_zerogpu_every_callers_predict_goes_through_the_gpu_task(fake_zerogpu):
    """Clicks, compare and the APIs call ``ctx.backend(id).predict``: on ZeroGPU that must be
    the GPU task too, not the model in this (CUDA-less) process."""
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut"))
    try:
        routed = []
        ctx._predict_task = lambda *args: routed.append(args[0]) or ctx._predict_now(*args)
        backend = ctx.backend("grabcut")
        assert backend.model_id == "grabcut" and backend.spec.capabilities
        encoded = ctx.encode("grabcut", _image())
        prediction = backend.predict(encoded.embedding, Prompts(box=(18, 8, 42, 32)))
        assert routed == ["grabcut"]
        assert prediction.mask(prediction.best_index).shape == (40, 60)
    finally:
        ctx.close()
