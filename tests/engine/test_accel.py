"""Hardware detection, the "auto" precision and the thread policy (``sam_backends.speed.accel``)."""

from __future__ import annotations

import pytest

from sam_backends import SamBackendError
from sam_backends.device import resolve_precision
from sam_backends.speed import accel


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx2", "avx512f"}, False),
        ({"avx512f", "avx512_bf16"}, True),
        ({"amx_tile", "amx_bf16"}, True),
        (set(), False),
    ],
)
def test_native_bf16_follows_cpu_flags(flags, expected):
    assert accel.cpu_has_native_bf16(frozenset(flags)) is expected


def test_cpu_precision_is_bf16_only_with_native_support(monkeypatch):
    monkeypatch.setattr(accel, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert accel.fastest_precision("cpu") == "fp32-fast"
    monkeypatch.setattr(accel, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert accel.fastest_precision("cpu") == "bf16"


def test_other_devices_stay_exact_without_native_bf16(monkeypatch):
    assert accel.fastest_precision("mps") == "fp32"
    monkeypatch.setattr(accel, "cuda_has_native_bf16", lambda: False)
    assert accel.fastest_precision("cuda") == "fp32"
    monkeypatch.setattr(accel, "cuda_has_native_bf16", lambda: True)
    assert accel.fastest_precision("cuda:1") == "bf16"


def test_this_machine_flags_are_read():
    flags = accel.cpu_flags()
    # /proc/cpuinfo exists on Linux; elsewhere the set is empty and auto stays exact.
    assert accel.cpu_has_native_bf16() == any(f in flags for f in accel.BF16_CPU_FLAGS)


def test_auto_and_default_precision_resolve_through_accel(monkeypatch):
    monkeypatch.delenv("SAM_PRECISION", raising=False)
    expected = accel.fastest_precision("cpu")
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision(None, "cpu") == expected
    monkeypatch.setenv("SAM_PRECISION", "fp32")
    assert resolve_precision(None, "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"


@pytest.mark.parametrize("family, without_bf16, with_bf16", [
    ("sam1", "fp32-fast", "bf16"),
    ("sam2", "fp32-fast", "bf16"),
    ("sam3", "fp32", "bf16"),  # no fp32 fast path: exact
    ("owlv2", "fp32", "bf16"),
    ("grabcut", "fp32", "fp32"),
])
def test_auto_resolves_among_the_precisions_a_family_runs(monkeypatch, family, without_bf16,
                                                           with_bf16):
    from sam_backends.families import get_family

    monkeypatch.delenv("SAM_PRECISION", raising=False)
    offered = get_family(family).precisions
    monkeypatch.setattr(accel, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert resolve_precision("auto", "cpu", offered) == without_bf16
    monkeypatch.setattr(accel, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert resolve_precision("auto", "cpu", offered) == with_bf16
    assert resolve_precision("fp32", "cpu", offered) == "fp32"  # explicit: passed through


def test_video_tracks_fp32_fast_as_exact_fp32(monkeypatch):
    """A CPU without native bf16: "auto" tracks in fp32 (the fp32 fast path is for clicks)."""
    from sam_backends.video.tracker import VIDEO_PRECISIONS

    monkeypatch.delenv("SAM_PRECISION", raising=False)
    monkeypatch.setattr(accel, "cpu_flags", lambda: frozenset({"avx2"}))
    assert resolve_precision("auto", "cpu", VIDEO_PRECISIONS) == "fp32"


def test_thread_count_from_environment(monkeypatch):
    monkeypatch.delenv(accel.THREADS_ENV, raising=False)
    assert accel.thread_count() == accel.available_cores() >= 1
    monkeypatch.setenv(accel.THREADS_ENV, "3")
    assert accel.thread_count() == 3
    for bad in ("zero", "0", "-2"):
        monkeypatch.setenv(accel.THREADS_ENV, bad)
        with pytest.raises(SamBackendError, match=accel.THREADS_ENV):
            accel.thread_count()


def test_configure_threads_sets_torch_and_opencv():
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        assert accel.configure_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert cv2.getNumThreads() == 1
    finally:
        accel.configure_threads(before[0])
        cv2.setNumThreads(before[1])


def test_allocator_tuning_is_idempotent():
    first = accel.tune_allocator()
    assert accel.tune_allocator() == first


ARENAS_PROBE = r"""
import ctypes, re, sys, tempfile, threading
import numpy as np
from sam_backends.speed import accel
if sys.argv[1] == "tuned":
    accel.tune_allocator()
if sys.argv[1] == "app":  # as ``python app.py`` starts: Gradio is imported inside build_demo
    import app
    from workbench.config import AppConfig
    app.build_demo(AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=None))
held, ready, done = [], threading.Event(), threading.Event()

def work():  # a thread's own 40 MB block, as an encode on its own thread makes
    held.append(np.ones(5_000_000))
    ready.set()
    done.wait()

thread = threading.Thread(target=work)
thread.start()
ready.wait()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as report:
    stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(len(re.findall(rb"<heap nr=", open(report.name, "rb").read())))
done.set()
thread.join()
"""


def _arenas(mode: str, **env: str) -> int:
    """glibc's arenas in a fresh interpreter while a second thread holds a block
    (``malloc_info``'s report has one ``<heap nr=...>`` per arena)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    environ = {k: v for k, v in os.environ.items() if k != accel.ARENAS_ENV}
    environ.update(env, PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", ARENAS_PROBE, mode], env=environ,
                          capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not accel.tune_allocator(), reason="glibc's mallopt is not available here")
def test_tuned_threads_share_the_main_arena_and_a_users_setting_stands():
    """A new thread's own arena cannot hold an encoder's 20-60 MiB temporaries (its heaps are
    at most 64 MiB), so they were mapped and faulted afresh on every encode; tuned, every
    thread allocates in the main arena. A ``MALLOC_ARENA_MAX`` the user set is glibc's."""
    assert _arenas("plain") >= 2  # the default: the thread got an arena of its own
    assert _arenas("tuned") == 1
    assert _arenas("tuned", **{accel.ARENAS_ENV: "2"}) == 2


@pytest.mark.skipif(not accel.tune_allocator(), reason="glibc's mallopt is not available here")
def test_the_app_tunes_the_allocator_before_importing_gradio():
    """Importing Gradio starts threads that end, and a new thread takes an ended thread's
    arena: tuned after that import, the app's threads still got arenas of their own."""
    assert _arenas("app") == 1
