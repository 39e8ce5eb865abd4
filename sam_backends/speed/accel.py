"""What the hardware does fast, and one process-wide policy for threads and memory.

``fastest_precision(device)`` is what ``precision="auto"`` (the default) resolves to:

* ``"bf16"`` where bf16 matrix arithmetic is native: a CPU with AVX512-BF16 or AMX-BF16 (oneDNN
  then runs bf16 matrix products several times faster than fp32; on this 2-core Sapphire
  Rapids machine a 4096x768x2304 product takes 15 ms in bf16 against 170 ms in fp32), or a
  CUDA GPU that supports bf16 without emulation (Ampere and newer).
* ``"fp32-fast"`` on any other CPU: bf16 there is emulated and slower than fp32, so the fast
  path runs with fp32 arithmetic (``FastMaskDecoder``'s fused layouts and OpenCV upscaling for
  clicks, fused relative-position attention for SAM 1's encoder). Measured on an AVX2-only
  EPYC: a click 2.0-2.4x faster than exact fp32, mask IoU >= 0.9997 against it
  (``benchmarks/bench_speed.py``). A family without that path runs "fp32".
* ``"fp32"`` elsewhere (a GPU without native bf16, Apple MPS), where the exact mode is also
  about the fastest.

``configure_threads()`` applies the thread policy once, at start-up (the PyTorch backends call
it when they load; ``SAM_THREADS`` overrides the count):

* PyTorch intra-op threads = the CPU cores this process may use; inter-op threads = 1 (the
  backends never run independent ops in parallel, and a second pool only competes).
* OpenCV gets the same count. PyTorch and OpenCV work one after the other within a call
  (decode, then upscale), so they share the cores instead of fighting over them.
* ONNX Runtime is not used, so it has no pool to configure: measured on this machine, an ONNX
  Runtime session of the upstream decoder took about 58 ms of CPU per click on one core, the
  PyTorch fast decoder (``fast_decoder``) about 30-36 ms, and a second runtime's thread pool
  only competes with PyTorch's.

``limit_this_thread(count)`` gives the calling thread alone fewer intra-op threads (a
background encode), where PyTorch runs on OpenMP: the OpenMP thread count is a per-thread
setting, and ``torch.set_num_threads`` would also change the default of every thread started
later. MKL, which does the wheels' fp32 matrix products, keeps a count of its own that the
OpenMP setting does not reach; it has a per-thread setting too, and both are set. (With only
OpenMP's lowered, a "one-thread" click beside another process spinning on one of 2 cores still
ran its products on two threads, one of them sharing the busy core: p50 158-165 ms, p95 up to
839 ms, against 48 / 54 ms with MKL's lowered as well; SAM 2.1 tiny, AVX2 EPYC.)

``tune_allocator()`` raises glibc malloc's mmap threshold so the decoder's 1-16 MiB temporaries
are reused from the heap instead of being mapped and page-faulted afresh on every click
(about 15% of a click here), and keeps every thread in glibc's main arena, where an encoder's
20-60 MiB temporaries are reused too (a new thread's own arena cannot hold them, so an encode
on a fresh thread mapped and faulted them afresh each time). It only applies on Linux with
glibc.

The price of that setting: an 8-16 MiB cached embedding also comes from the heap, and when the
cache evicts it the freed pages stay in the process while live blocks sit on either side (an
engine-only loop held about 160 MB more with the setting than without). ``release_free_memory``
(glibc's ``malloc_trim(0)``) hands those free pages back to the system, in every arena, and the
embedding cache calls it after evictions (``sam_backends.cache``); the clicks keep their heap
reuse. ``heap_in_use()`` (glibc's ``mallinfo2``) is what malloc has handed out and not had back:
the measure the cache's byte accounting is tested against. ``process_rss_bytes()`` reads the
resident set from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

THREADS_ENV = "SAM_THREADS"
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# glibc mallopt parameters (malloc.h) and the values the policy sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS_ENV = "MALLOC_ARENA_MAX"  # glibc's own variable: when set, the user's value stands
_MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024  # allocations below this come from the heap
_TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024  # free heap above this is returned to the system

# The one piece of process-wide state: whether the policy has been applied (it is global by
# nature, as thread pools are).
_POLICY_APPLIED: dict[str, int] = {}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU executes bf16 dot products natively (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def cuda_has_native_bf16() -> bool:
    """True for a CUDA GPU with hardware bf16 (compute capability 8.0 or newer)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch without the keyword
        return torch.cuda.get_device_capability()[0] >= 8


def fastest_precision(device: str) -> str:
    """The fastest precision that stays faithful to fp32 on ``device``: "bf16", "fp32-fast"
    (a CPU without native bf16) or "fp32".

    Faithful: the fast path's masks agree with the exact path's (median IoU >= 0.99 on the
    benchmark's photos and prompts) and its embeddings have cosine similarity >= 0.999;
    ``benchmarks/bench_speed.py`` measures both.
    """
    if device == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32-fast"
    if device.startswith("cuda"):
        return "bf16" if cuda_has_native_bf16() else "fp32"
    return "fp32"


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_count() -> int:
    """``SAM_THREADS`` if set to a positive integer, else ``available_cores()``."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value > 0:
            return value
        from ..errors import SamBackendError

        raise SamBackendError(f"{THREADS_ENV}={raw!r} is not a positive integer; unset it or "
                              "give the number of threads to use, e.g. SAM_THREADS=4.")
    return available_cores()


def configure_threads(num_threads: int | None = None) -> int:
    """Apply the thread policy (see the module docstring) once; returns the thread count.

    Later calls return the count already applied, unless ``num_threads`` asks for another one.
    """
    count = num_threads if num_threads is not None else thread_count()
    if _POLICY_APPLIED.get("threads") == count:
        return count
    import torch

    torch.set_num_threads(count)
    if "threads" not in _POLICY_APPLIED:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # inter-op pool already started by earlier work: leave it
            pass
    try:
        import cv2

        cv2.setNumThreads(count)
    except ImportError:  # OpenCV is only needed by some backends
        pass
    _POLICY_APPLIED["threads"] = count
    tune_allocator()
    return count


def limit_this_thread(count: int) -> bool:
    """Run this thread's PyTorch work on at most ``count`` threads (other threads keep theirs);
    True when applied. Only where PyTorch's parallel backend is OpenMP (the CPU wheels): the
    thread's OpenMP setting is changed directly, after PyTorch made its own for the thread."""
    import ctypes

    import torch

    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return False
    try:
        set_threads = ctypes.CDLL(None).omp_set_num_threads
    except (OSError, AttributeError):
        return False
    torch.get_num_threads()  # PyTorch's lazy per-thread set-up first, or it would undo ours
    torch.ones(64).sum()
    count = max(1, int(count))
    set_threads(ctypes.c_int(count))
    mkl = _mkl_library()
    if mkl is not None:
        mkl.MKL_Set_Num_Threads_Local(ctypes.c_int(count))
    return torch.get_num_threads() == count


@lru_cache(maxsize=1)
def _mkl_library() -> Any:
    """The PyTorch library MKL is linked into, if it exports MKL's thread settings (its C
    interface: ``MKL_Set_Num_Threads_Local`` takes an int; the lower-case names are Fortran's,
    taking pointers); None elsewhere (a build without MKL, another platform)."""
    import ctypes

    import torch

    folder = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        try:
            library = ctypes.CDLL(path)  # already loaded by torch: the same handle
            library.MKL_Set_Num_Threads_Local, library.MKL_Get_Max_Threads  # noqa: B018
        except (OSError, AttributeError):
            return None
        return library
    return None


def mkl_threads_here() -> int | None:
    """The MKL threads a product started in this thread may use; None without MKL (for the
    tests and benchmarks that check ``limit_this_thread``)."""
    library = _mkl_library()
    return None if library is None else int(library.MKL_Get_Max_Threads())


@contextlib.contextmanager
def this_thread_on(count: int | None) -> Iterator[None]:
    """Within the ``with`` body, this thread's PyTorch work on ``count`` threads (None: as it
    is), then its count before; every other thread keeps its own throughout.

    Why not ``torch.set_num_threads``: that is also the count every later thread starts with,
    so a run inside a server (the page's auto-labelling on one thread) would leave the app's
    later encodes on one thread too. A body left from another thread (a generator closed by
    the garbage collector elsewhere) does not touch that thread's count.
    """
    if count is None:
        yield
        return
    import torch

    owner, before = threading.get_ident(), torch.get_num_threads()
    changed = limit_this_thread(count)
    try:
        yield
    finally:
        if changed and threading.get_ident() == owner:
            limit_this_thread(before)


def _libc():
    """glibc, or None where the C library is another (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc has it; musl's libc.so.6 does not exist
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> bool:
    """Return the free pages of malloc's heaps to the system (glibc ``malloc_trim(0)``; also
    the free pages between live blocks). True when glibc released something; False where
    there is no glibc. Costs what it returns (here 45 ms for 256 MiB of free pages, 0.3 ms
    when there is nothing to return)."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


def heap_in_use() -> int | None:
    """Bytes malloc has handed out and not had back, heap and mmapped blocks together
    (glibc ``mallinfo2``: uordblks + hblkhd); None where that is not available."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def process_rss_bytes() -> int | None:
    """This process's resident memory in bytes (Linux ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            resident_pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def tune_allocator() -> bool:
    """Keep mid-size temporaries on the heap, in one arena (glibc only); True when applied.

    One arena: glibc gives each new thread an arena of its own, whose heaps are at most 64 MiB,
    so a 20-60 MiB temporary of an encoder there cannot come from a heap and is mapped, and
    page-faulted, afresh every time it is made. Encodes run on a thread of their own
    (``workbench.threads.in_own_thread``), so every encode paid that; in the main arena the
    same blocks are reused. ``benchmarks/bench_arenas.py`` measures both; see README, Speed.
    Call this before the process starts threads (``app.build_demo`` does, first): a thread keeps
    the arena it already has. ``MALLOC_ARENA_MAX`` in the environment is left to glibc.
    """
    if "allocator" in _POLICY_APPLIED:
        return bool(_POLICY_APPLIED["allocator"])
    applied = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
            )
            if applied and not os.environ.get(ARENAS_ENV, "").strip():
                applied = bool(libc.mallopt(_M_ARENA_MAX, 1))
        except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
            applied = False
    _POLICY_APPLIED["allocator"] = int(applied)
    return applied
