"""Reading an HTTP response to its end without ever hanging: the rules of ``DownloadLimits``.

Why: the socket timeout applies to each read, so a server that drips a byte every few seconds
never trips it and a 2.5 GB download could take forever. ``stream`` checks a minimum rate over
a sliding window and an overall deadline after every packet. Used by ``checkpoints``.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError

CHUNK = 1 << 20  # 1 MiB writes and progress steps: few syscalls, small memory
PROGRESS_EVERY_S = 1.0  # a slow transfer still reports progress (and is written) this often
FILE_MODE = 0o644  # like any file the user creates (NamedTemporaryFile makes 0600)


@dataclass(frozen=True)
class DownloadLimits:
    """When a download is given up, so a stalled or dripping server never hangs a process.

    A per-read socket timeout alone is not enough: a server sending one byte every few seconds
    never trips it. So, besides it, a minimum rate over a sliding window and an overall deadline
    that grows with the file (slow but honest links still finish 2.5 GB).

    Attributes:
        read_timeout_s: the longest one socket operation (connect, one read) may block.
        window_s, min_window_bytes: abort when fewer than ``min_window_bytes`` arrived in the
            last ``window_s`` seconds.
        min_total_s, floor_bytes_per_s: the whole file must arrive within
            ``max(min_total_s, size / floor_bytes_per_s)`` (no overall deadline when the size
            is unknown; the window rule still applies).
    """

    read_timeout_s: float = 30.0
    window_s: float = 60.0
    min_window_bytes: int = 256 * 1024
    min_total_s: float = 600.0
    floor_bytes_per_s: float = 256 * 1024

    def total_deadline_s(self, size: int) -> float | None:
        return max(self.min_total_s, size / self.floor_bytes_per_s) if size else None


def stream(
    response: object,
    store: Callable[[bytes, int], None],
    guard: RateGuard,
    timeout: float,
    failure: Callable[[str], DownloadError],
) -> int:
    """Read ``response`` to its end, passing ~1 MiB pieces to ``store(piece, done_so_far)``.

    ``read1`` returns whatever one socket read brings, so the rate rules are checked after
    every packet, not once per MiB (a plain ``read(1 MiB)`` waits until a whole MiB arrived).
    Returns the number of bytes read.
    """
    import http.client

    pending: list[bytes] = []
    pending_bytes = done = 0
    last_store = time.monotonic()
    while True:
        try:
            piece = response.read1(CHUNK)  # type: ignore[attr-defined]
        except TimeoutError:
            raise failure(f"no data arrived for {_seconds(timeout)} after {done + pending_bytes:,} "
                          "bytes") from None
        except (http.client.HTTPException, OSError) as exc:
            detail = type(exc).__name__
            raise failure(f"connection lost after {done + pending_bytes} bytes ({detail})"
                          ) from None
        pending.append(piece)
        pending_bytes += len(piece)
        now = time.monotonic()
        if pending_bytes and (not piece or pending_bytes >= CHUNK
                              or now - last_store >= PROGRESS_EVERY_S):
            done += pending_bytes
            store(b"".join(pending), done)
            pending, pending_bytes, last_store = [], 0, now
        if not piece:
            return done
        reason = guard.reason_to_stop(done + pending_bytes)
        if reason is not None:
            raise failure(reason)


class RateGuard:
    """The two rules of ``DownloadLimits`` beyond the socket timeout, checked per read."""

    def __init__(self, limits: DownloadLimits, total: int) -> None:
        self.limits = limits
        self.total = total
        self.start = time.monotonic()
        self.deadline = limits.total_deadline_s(total)
        # (time, bytes so far); the first entry is the newest one at least a window old
        self.samples: collections.deque[tuple[float, int]] = collections.deque([(self.start, 0)])

    def reason_to_stop(self, received: int) -> str | None:
        now = time.monotonic()
        elapsed = now - self.start
        if self.deadline is not None and elapsed > self.deadline:
            return (f"it did not finish within {_seconds(self.deadline)}: {received:,} of "
                    f"{self.total:,} bytes arrived")
        self.samples.append((now, received))
        window = self.limits.window_s
        while len(self.samples) > 1 and self.samples[1][0] <= now - window:
            self.samples.popleft()
        recent = received - self.samples[0][1]
        if elapsed >= window and recent < self.limits.min_window_bytes:
            return (f"too slow: {_amount(recent)} arrived in the last {_seconds(window)}, "
                    f"less than the minimum of {_amount(self.limits.min_window_bytes)}")
        return None


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _amount(size: int) -> str:
    return f"{size:,} bytes" if size < 10 * 1024 else f"{size / 1024:.0f} KiB"


_umask_lock = threading.Lock()


def make_readable(path: Path) -> None:
    """Mode 0644 less the umask, as for a file the user copies in (temp files are 0600)."""
    try:
        os.chmod(path, FILE_MODE & ~_current_umask())
    except OSError:
        pass  # the file is still usable by its owner


def _current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide, not thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask
