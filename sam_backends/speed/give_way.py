"""Long forward passes that give way: an image encode pauses between two of its operations while
a person's click decodes, then carries on.

Why: on a machine with few cores an encode (seconds, on every core) and a click's decode (tens of
milliseconds) share the cores. Run side by side, the decode's parallel regions wait for threads
that the encode keeps busy, and a click that takes 30 ms alone takes two to three times that
(``benchmarks/bench_threads.py``). Running the click on one thread (``workbench.threads``)
spares it those waits but still leaves it half the machine. Pausing the encode at its next
operation gives the click the machine for its few tens of milliseconds, at about that cost to
the encode.

How: a thread opts in with ``GiveWay.giving_way()`` around its forward pass; decodes run inside
``GiveWay.urgent()``. The opted-in thread runs under a PyTorch function mode (``_PausingMode``;
modes are per thread, so the decode and every other thread run as before) that checks before
each operation whether urgent work is in flight. An operation already running finishes first,
so while a person is clicking (urgent work in the last ``RECENT_S``) the large ones run in
pieces with a check between them: attention by windows or rows of queries, linear layers by
rows of their input, GELU and LayerNorm by slices, each piece about ``PIECE_FLOPS`` of work.
Rows are independent in all four, and the pieces give the same values as the whole (the tests
compare them with the unsplit call). Measured on a 2-core AMD EPYC (AVX2), SAM 2.1 tiny: the
longest stretch without a check went from 225 ms to under 50 ms; the mode alone costs an encode
about 2 %, the pieces about 14 % more, which is why they are used only while someone clicks.

Never starved: an encode pauses for at most ``max_pause_s`` at a time and, over its whole
run, for no longer than it has run plus ``grace_s`` (so a flood of clicks at most about
doubles an encode, and a person waiting for the encode still gets it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterator

MAX_PAUSE_S = 0.25  # one pause never longer than this, whatever keeps arriving
GRACE_S = 0.1  # pausing allowed before the encode has run for long
RECENT_S = 3.0  # urgent work this recent makes a pass run in pieces
PIECE_FLOPS = 5e8  # about 3-8 ms on two cores of a laptop-class CPU


class GiveWay:
    """Urgent work (decodes) against work that gives way to it (encodes); one per app."""

    def __init__(self, max_pause_s: float = MAX_PAUSE_S, grace_s: float = GRACE_S,
                 piece_flops: float = PIECE_FLOPS, recent_s: float = RECENT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_pause_s = max_pause_s
        self.grace_s = grace_s
        self.piece_flops = piece_flops
        self.recent_s = recent_s
        self._clock = clock
        self._last_urgent = float("-inf")
        self._changed = threading.Condition()
        self._urgent = 0
        self._giving_way = 0
        self._local = threading.local()

    @property
    def urgent_running(self) -> int:
        """Urgent calls in flight now."""
        return self._urgent

    @property
    def giving_way_now(self) -> int:
        """Threads inside ``giving_way()`` now."""
        return self._giving_way

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """Around a decode: threads giving way pause at their next operation until it ends."""
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            with self._changed:
                self._urgent -= 1
                self._last_urgent = self._clock()
                if self._urgent == 0:
                    self._changed.notify_all()

    @contextlib.contextmanager
    def giving_way(self) -> Iterator["PauseBudget"]:
        """Around a long forward pass on this thread: it pauses while urgent work runs (within
        the budget of the module docstring). Nested use keeps the outer budget."""
        current = getattr(self._local, "budget", None)
        if current is not None:
            yield current
            return
        budget = PauseBudget(self)
        self._local.budget = budget
        with self._changed:
            self._giving_way += 1
        try:
            with _pausing_mode(budget, self.piece_flops):
                yield budget
        finally:
            self._local.budget = None
            with self._changed:
                self._giving_way -= 1

    def urgent_lately(self) -> bool:
        """Urgent work now or within the last ``recent_s``: a person is clicking."""
        return self._urgent > 0 or self._clock() - self._last_urgent < self.recent_s

    def _wait_calm(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._urgent == 0, timeout=timeout)


class PauseBudget:
    """One forward pass's pauses: how long it ran, how long and how often it paused."""

    def __init__(self, owner: GiveWay) -> None:
        self._owner = owner
        self.started = owner._clock()
        self.paused_s = 0.0
        self.pauses = 0

    def wants_pieces(self) -> bool:
        """Split the next large operation: only while a person is clicking, because the
        pieces cost the pass about 14 % (smaller products, the pieces joined again)."""
        return self._owner.urgent_lately()

    def pause_point(self) -> None:
        """Called between operations: wait while urgent work runs, within the budget."""
        owner = self._owner
        if owner._urgent == 0:  # the common case: one integer read, no lock
            return
        now = owner._clock()
        ran = now - self.started - self.paused_s
        allowed = ran + owner.grace_s - self.paused_s
        if allowed <= 0:
            return
        owner._wait_calm(min(owner.max_pause_s, allowed))
        self.paused_s += owner._clock() - now
        self.pauses += 1


def _pausing_mode(budget: PauseBudget, piece_flops: float) -> Any:
    """A ``TorchFunctionMode`` that calls ``budget.pause_point()`` before every operation and
    runs the large row-wise ones in pieces (torch imported only here; without torch there is
    nothing to pause, and the pass runs whole)."""
    try:
        from torch.nn import functional as F
        from torch.overrides import TorchFunctionMode
    except ImportError:
        return contextlib.nullcontext()

    in_pieces = {F.scaled_dot_product_attention: _attention_in_pieces,
                 F.linear: _linear_in_pieces,
                 F.gelu: _elementwise_in_pieces,
                 F.layer_norm: _norm_in_pieces}

    class _PausingMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            budget.pause_point()
            split = in_pieces.get(func)
            if split is not None and budget.wants_pieces():
                return split(budget, piece_flops, func, *args, **kwargs)
            return func(*args, **kwargs)

    return _PausingMode()


# Rough cost of one output element of the memory-bound operations, in the matrix products'
# floating-point operations of the same time (a GELU element costs about as much time as 200).
ELEMENTWISE_FLOPS = 200.0


def _piece_size(length: int, flops_per_unit: float, piece_flops: float, multiple: int) -> int:
    """Units per piece along a dimension of ``length``: about ``piece_flops`` of work, rounded
    down to a multiple of ``multiple`` (kernels' block sizes), at least ``multiple``."""
    per_piece = int(piece_flops // max(flops_per_unit, 1.0))
    return min(length, max(multiple, per_piece - per_piece % multiple))


def _slices(budget: PauseBudget, length: int, step: int) -> Iterator[slice]:
    """Slices of ``range(length)``, ``step`` long, with a pause point between two of them."""
    for start in range(0, length, step):
        if start:
            budget.pause_point()
        yield slice(start, start + step)


def _split_dim(shape: tuple, last: int) -> int | None:
    """The first dimension before ``last`` longer than 1 (None: nothing to split along)."""
    for dim in range(last):
        if shape[dim] > 1:
            return dim
    return None


def _attention_in_pieces(budget, piece_flops, func, *args, **kwargs):
    """Attention by batch entries (windows), or by rows of queries for one batch entry, pausing
    between pieces. Only the plain call (query, key and value given by position, no mask, not
    causal: rows independent) is split; any other runs whole."""
    import torch

    plain = (len(args) == 3 and not kwargs.get("is_causal")
             and kwargs.get("attn_mask") is None and not kwargs.get("enable_gqa"))
    if not plain or not all(torch.is_tensor(a) for a in args):
        return func(*args, **kwargs)
    query, key, value = args
    if query.dim() < 3 or key.shape[:-2] != query.shape[:-2]:
        return func(*args, **kwargs)
    per_row = 4.0 * key.shape[-2] * query.shape[-1]
    dim = 0 if query.shape[0] > 1 else query.dim() - 2
    if dim == 0:
        unit = per_row * query[0].numel() / query.shape[-1]
        step = _piece_size(query.shape[0], unit, piece_flops, 1)
    else:
        unit = per_row * query.numel() / query.shape[-1] / query.shape[-2]
        step = _piece_size(query.shape[-2], unit, piece_flops, 64)
    if step >= query.shape[dim]:
        return func(query, key, value, **kwargs)
    parts = _slices(budget, query.shape[dim], step)
    if dim == 0:
        pieces = [func(query[part], key[part], value[part], **kwargs) for part in parts]
    else:
        pieces = [func(query[..., part, :], key, value, **kwargs) for part in parts]
    return torch.cat(pieces, dim=dim)


def _linear_in_pieces(budget, piece_flops, func, *args, **kwargs):
    """``linear`` by rows of the input, each piece written into its rows of the output; a call
    in another form (keywords for the input or weight, a bias of another dtype) runs whole."""
    import torch

    if len(args) not in (2, 3) or set(kwargs) - {"bias"}:
        return func(*args, **kwargs)
    x, weight = args[:2]
    bias = args[2] if len(args) == 3 else kwargs.get("bias")
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if (not all(torch.is_tensor(t) for t in tensors) or x.dim() < 2 or not x.is_contiguous()
            or weight.dim() != 2 or any(t.dtype != x.dtype for t in tensors)):
        return func(*args, **kwargs)
    flat = x.reshape(-1, x.shape[-1])
    rows = flat.shape[0]
    step = _piece_size(rows, 2.0 * weight.shape[0] * weight.shape[1], piece_flops, 64)
    if step >= rows:
        return func(x, weight, bias)
    out = torch.empty(rows, weight.shape[0], dtype=x.dtype, device=x.device)
    for part in _slices(budget, rows, step):
        if bias is None:
            torch.mm(flat[part], weight.t(), out=out[part])
        else:
            torch.addmm(bias, flat[part], weight.t(), out=out[part])
    return out.reshape(*x.shape[:-1], weight.shape[0])


def _in_pieces_along(budget, piece_flops, func, x, last: int, *args, **kwargs):
    """``func(x, ...)`` by slices of ``x`` along its first long dimension before ``last``."""
    import torch

    dim = _split_dim(tuple(x.shape), last) if torch.is_tensor(x) else None
    if dim is None:
        return func(x, *args, **kwargs)
    unit = ELEMENTWISE_FLOPS * x.numel() / x.shape[dim]
    step = _piece_size(x.shape[dim], unit, piece_flops, 1)
    if step >= x.shape[dim]:
        return func(x, *args, **kwargs)
    leading = (slice(None),) * dim
    pieces = [func(x[(*leading, part)], *args, **kwargs)
              for part in _slices(budget, x.shape[dim], step)]
    return torch.cat(pieces, dim=dim)


def _elementwise_in_pieces(budget, piece_flops, func, *args, **kwargs):
    """An element-wise activation (GELU) by slices; the input given by keyword runs whole."""
    if not args or not hasattr(args[0], "dim"):
        return func(*args, **kwargs)
    x = args[0]
    return _in_pieces_along(budget, piece_flops, func, x, x.dim(), *args[1:], **kwargs)


def _norm_in_pieces(budget, piece_flops, func, *args, **kwargs):
    """``layer_norm`` by slices along the dimensions it does not normalise over; a call with
    its input or shape by keyword runs whole."""
    if len(args) < 2 or not hasattr(args[0], "dim"):
        return func(*args, **kwargs)
    x, normalized_shape = args[:2]
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    return _in_pieces_along(budget, piece_flops, func, x, x.dim() - len(shape), *args[1:],
                            **kwargs)
