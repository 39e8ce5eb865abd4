"""Encodes that give way to clicks (``sam_backends.speed.give_way``).

Checked for real on a small random-weight SAM 2.1: an encode giving way stops at its next
operation while urgent work is in flight and finishes after it, with the embedding it gives
without pausing, while a decode on another thread runs meanwhile; its pauses stay within the
budget when urgent work never ends. The pieces of the large operations are compared with the
unsplit calls.
"""

from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from sam_backends.speed.give_way import GiveWay  # noqa: E402
from sam_backends.testing.random_models import synthetic_image  # noqa: E402


def clicking(**kwargs) -> GiveWay:
    """A ``GiveWay`` that has just seen urgent work, so large operations run in pieces."""
    give_way = GiveWay(recent_s=1e9, **kwargs)
    with give_way.urgent():
        pass
    return give_way


def counted_pauses(give_way: GiveWay, run):
    """``run()`` inside ``giving_way``, with the pause points counted: (result, points)."""
    points = []
    with give_way.giving_way() as budget:
        original = budget.pause_point
        budget.pause_point = lambda: points.append(1) or original()
        result = run()
    return result, len(points)


OPERATIONS = {
    "attention over windows": lambda g: F.scaled_dot_product_attention(
        torch.randn(12, 2, 64, 16, generator=g), torch.randn(12, 2, 64, 16, generator=g),
        torch.randn(12, 2, 64, 16, generator=g)),
    "attention by rows": lambda g: F.scaled_dot_product_attention(
        torch.randn(1, 2, 700, 16, generator=g), torch.randn(1, 2, 300, 16, generator=g),
        torch.randn(1, 2, 300, 16, generator=g), scale=0.3),
    "linear with bias": lambda g: F.linear(
        torch.randn(3, 400, 24, generator=g), torch.randn(40, 24, generator=g),
        torch.randn(40, generator=g)),
    "linear without bias": lambda g: F.linear(
        torch.randn(900, 24, generator=g), torch.randn(40, 24, generator=g)),
    "gelu": lambda g: F.gelu(torch.randn(1, 300, 20, 8, generator=g)),
    "layer norm": lambda g: F.layer_norm(
        torch.randn(1, 40, 30, 16, generator=g), (16,), torch.randn(16, generator=g),
        torch.randn(16, generator=g)),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_large_operations_run_in_pieces_with_the_unsplit_values(name):
    """Each of the four operations, large enough for pieces, gives the unsplit values."""
    operation = OPERATIONS[name]
    whole = operation(torch.Generator().manual_seed(0))
    give_way = clicking(piece_flops=1e4)
    pieces, points = counted_pauses(give_way, lambda: operation(
        torch.Generator().manual_seed(0)))
    calm, calm_points = counted_pauses(GiveWay(piece_flops=1e4), lambda: operation(
        torch.Generator().manual_seed(0)))
    assert pieces.shape == whole.shape and pieces.dtype == whole.dtype
    torch.testing.assert_close(pieces, whole, rtol=1e-6, atol=1e-6)
    assert torch.equal(calm, whole)
    # the pieces add pause points: (randn x n, the operation) -> more than one each
    assert points > calm_points + 1


@pytest.mark.parametrize("call", [
    lambda x, w, b: F.linear(input=x, weight=w, bias=b),
    lambda x, w, b: F.scaled_dot_product_attention(query=x, key=x, value=x),
    lambda x, w, b: F.gelu(input=x),
    lambda x, w, b: F.layer_norm(x, normalized_shape=(8,)),
])
def test_calls_in_other_forms_run_whole(call):
    """Keywords for the tensors (as some libraries call them): run whole, no error."""
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(2, 600, 8, generator=g), torch.randn(8, 8), torch.randn(8)
    expected = call(x, w, b)
    result, points = counted_pauses(clicking(piece_flops=1e2), lambda: call(x, w, b))
    assert torch.equal(result, expected)
    assert points <= 3  # the call and, at most, what it calls inside: no pieces


def test_masked_attention_runs_whole():
    q = torch.randn(1, 1, 500, 8)
    mask = torch.ones(500, 500, dtype=torch.bool).tril()
    give_way = clicking(piece_flops=1e3)
    result, points = counted_pauses(give_way, lambda: F.scaled_dot_product_attention(
        q, q, q, attn_mask=mask))
    assert torch.equal(result, F.scaled_dot_product_attention(q, q, q, attn_mask=mask))
    assert points == 1


@pytest.fixture(scope="module")
def sam2(sam2_small):
    from sam_backends import create_backend

    return create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                          precision="fp32")


def test_an_encode_pauses_while_a_click_decodes_then_gives_the_same_embedding(sam2):
    from sam_backends import Prompts

    image = synthetic_image(64, 80, seed=3)
    expected = sam2.encode(image)
    give_way = clicking(max_pause_s=30.0, grace_s=30.0, piece_flops=2e5)
    done: dict = {}

    def encode() -> None:
        with give_way.giving_way() as budget:
            done["embedding"] = sam2.encode(image)
        done["budget"] = budget

    with give_way.urgent():
        worker = threading.Thread(target=encode)
        worker.start()
        time.sleep(0.4)
        assert worker.is_alive() and "embedding" not in done  # paused at an operation
        assert give_way.giving_way_now == 1
        # the click decodes meanwhile, on this thread, untouched by the pause
        sam2.predict(expected, Prompts(points=((20.0, 20.0),), labels=(1,))).masks  # noqa: B018
    worker.join(timeout=60)
    assert not worker.is_alive() and give_way.giving_way_now == 0
    budget = done["budget"]
    assert budget.pauses >= 1 and budget.paused_s >= 0.3
    for key, value in expected.features.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(done["embedding"].features[key], value, rtol=1e-5,
                                       atol=1e-5)


def test_pauses_stay_within_the_budget_when_urgent_work_never_ends(sam2):
    image = synthetic_image(64, 80, seed=4)
    give_way = GiveWay(max_pause_s=0.02, grace_s=0.05)
    with give_way.urgent():
        began = time.monotonic()
        with give_way.giving_way() as budget:
            sam2.encode(image)
        wall = time.monotonic() - began
    assert budget.pauses >= 1
    ran = wall - budget.paused_s
    # at most as long as it ran plus the grace, and one pause's overshoot
    assert budget.paused_s <= ran + 0.05 + 0.02 + 0.01


def test_nothing_pauses_without_urgent_work_or_outside_giving_way(sam2):
    image = synthetic_image(48, 48, seed=5)
    give_way = GiveWay()
    with give_way.giving_way() as budget:
        sam2.encode(image)
    assert budget.pauses == 0 and budget.paused_s == 0.0
    with give_way.urgent():
        began = time.monotonic()
        sam2.encode(image)  # this thread does not give way
        assert time.monotonic() - began < 30
    with give_way.giving_way() as outer, give_way.giving_way() as inner:
        assert inner is outer and give_way.giving_way_now == 1


def test_a_linear_with_its_bias_by_keyword_still_runs_in_pieces():
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(900, 24, generator=g), torch.randn(40, 24), torch.randn(40)
    result, points = counted_pauses(clicking(piece_flops=1e4), lambda: F.linear(x, w, bias=b))
    torch.testing.assert_close(result, F.linear(x, w, b), rtol=1e-6, atol=1e-6)
    assert points > 2
