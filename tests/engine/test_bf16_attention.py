"""bf16 attention for the fast paths: close to fp32 attention, and the modules built on it
compute what the upstream modules compute on the same weights.

Each comparison is against fp32 upstream arithmetic, with a tolerance that bf16 rounding meets
(relative error ~5e-3) but a wrong fold, scale or rotary step does not (errors of order 1).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from sam_backends.speed.bf16_attention import (
    BLOCK_SCORES,
    attention_bf16,
    bf16_attention,
    block_rows,
    prefers_bf16_products,
)

TOLERANCE = 2e-2  # relative Frobenius error allowed for bf16 against fp32


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


@pytest.mark.parametrize(
    ("q_shape", "k_shape", "v_channels"),
    [
        ((1, 4, 300, 32), (1, 4, 300, 32), 32),  # several heads, one block
        ((2, 1, 1100, 64), (2, 1, 2500, 64), 16),  # batch, several blocks, narrow values
        ((1, 1, 64, 48), (1, 1, 4096, 48), 48),  # few queries, many keys
    ],
)
def test_bf16_attention_is_close_to_fused_fp32(q_shape, k_shape, v_channels):
    torch.manual_seed(0)
    q, k = torch.randn(q_shape), torch.randn(k_shape)
    v = torch.randn(*k_shape[:-1], v_channels)
    want = F.scaled_dot_product_attention(q, k, v)
    got = bf16_attention(q, k, v)
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    assert relative_error(got, want) < TOLERANCE


def test_blocks_explicit_scale_and_strided_inputs_agree():
    """Rows in blocks give what one block gives; a strided qkv slice works as its copy."""
    torch.manual_seed(1)
    qkv = torch.randn(1, 700, 3, 2, 32)  # as a fused qkv projection lays them out
    q, k, v = (t.transpose(1, 2) for t in torch.unbind(qkv, 2))
    whole = bf16_attention(q, k, v, scale=0.3, rows=700)
    blocks = bf16_attention(q, k, v, scale=0.3, rows=64)
    copies = bf16_attention(q.contiguous(), k.contiguous(), v.contiguous(), scale=0.3, rows=64)
    assert torch.equal(blocks, copies)
    assert relative_error(blocks, whole) < 1e-2
    want = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    assert relative_error(blocks, want) < TOLERANCE


@pytest.mark.parametrize(("heads", "keys"), [(1, 4096), (4, 4096), (1, 16400), (8, 1 << 20)])
def test_block_rows_bound_the_scores(heads, keys):
    rows = block_rows(heads, keys)
    assert rows % 32 == 0 and rows >= 32
    assert rows == 32 or heads * keys * rows <= BLOCK_SCORES


def test_the_products_are_for_cpus_without_amx():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert prefers_bf16_products(cpu, frozenset({"avx2", "avx512_bf16"}))
    assert prefers_bf16_products(cpu, frozenset({"avx2"}))  # emulated bf16: still products
    assert not prefers_bf16_products(cpu, frozenset({"avx512_bf16", "amx_bf16"}))
    assert not prefers_bf16_products(gpu, frozenset({"avx512_bf16"}))


@pytest.mark.parametrize("products", [True, False], ids=["bf16 products", "fused kernel"])
def test_attention_bf16_either_way_is_close(monkeypatch, products):
    import sam_backends.speed.bf16_attention as module

    monkeypatch.setattr(module, "prefers_bf16_products", lambda device, flags=None: products)
    torch.manual_seed(7)
    q, k, v = torch.randn(1, 2, 500, 32), torch.randn(1, 2, 700, 32), torch.randn(1, 2, 700, 32)
    got = attention_bf16(q, k, v)
    assert got.dtype == torch.bfloat16
    assert relative_error(got, F.scaled_dot_product_attention(q, k, v)) < TOLERANCE


@pytest.fixture(params=[True, False], ids=["bf16 products", "fused kernel"])
def products(request, monkeypatch):
    """Both ways the fast modules can run: this CPU's choice is forced either way."""
    import sam_backends.speed.bf16_attention as module
    from sam_backends.families.sam2 import fast_memory

    choice = lambda device, flags=None: request.param  # noqa: E731
    monkeypatch.setattr(module, "prefers_bf16_products", choice)  # attention_bf16's choice
    monkeypatch.setattr(fast_memory, "prefers_bf16_products", choice)  # the value fold's
    return request.param


# SAM 2.1's memory attention ------------------------------------------------------------------


def _rope_attention(kv_in_dim: int, feat: int):
    from sam2.modeling.sam.transformer import RoPEAttention

    torch.manual_seed(2)
    attention = RoPEAttention(256, 1, downsample_rate=1, rope_theta=10000.0,
                              feat_sizes=(feat, feat), rope_k_repeat=kv_in_dim != 256,
                              kv_in_dim=kv_in_dim)
    for parameter in attention.parameters():  # non-zero biases, so a lost bias shows
        torch.nn.init.normal_(parameter, std=0.1)
    return attention.eval()


@pytest.mark.parametrize("kind", ["self-attention", "cross-attention to memory"])
def test_bf16_rope_attention_matches_upstream(kind, products):
    from sam2.modeling.sam.transformer import RoPEAttention

    from sam_backends.families.sam2.fast_memory import Bf16RoPEAttention

    feat = 16
    tokens = feat * feat
    cross = kind.startswith("cross")
    upstream = _rope_attention(64 if cross else 256, feat)
    fast = Bf16RoPEAttention.from_upstream(copy.deepcopy(upstream))
    assert isinstance(fast, RoPEAttention)  # the layer's checks still pass
    assert fast.folds_values == cross
    torch.manual_seed(3)
    q = torch.randn(1, tokens, 256)
    if cross:  # two memory frames and 4 object-pointer tokens without rotary encoding
        k = torch.randn(1, 2 * tokens + 4, 64)
        v = torch.randn(1, 2 * tokens + 4, 64)
        kwargs = {"num_k_exclude_rope": 4}
    else:
        k, v, kwargs = q + 0.5, q, {}
    with torch.inference_mode():
        want = upstream(q, k.clone(), v, **kwargs)
        got = fast(q, k.clone(), v, **kwargs)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert relative_error(got, want) < TOLERANCE


def test_memory_attention_conversion_keeps_the_layer_working(products):
    """A whole converted memory-attention layer stays close to upstream's (bf16 MLP too)."""
    from sam2.modeling.memory_attention import MemoryAttentionLayer

    from sam_backends.families.sam2.fast_memory import (
        Bf16Linear,
        Bf16RoPEAttention,
        accelerate_memory_attention,
    )

    torch.manual_seed(4)
    layer = MemoryAttentionLayer("relu", _rope_attention(64, 16), 256, 512, 0.0, False, True,
                                 False, _rope_attention(256, 16)).eval()

    class Holder(torch.nn.Module):  # accelerate_memory_attention takes the MemoryAttention
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([copy.deepcopy(layer)])

    holder = Holder()
    accelerate_memory_attention(holder)
    accelerate_memory_attention(holder)  # converting twice changes nothing
    fast = holder.layers[0]
    assert isinstance(fast.self_attn, Bf16RoPEAttention)
    assert isinstance(fast.cross_attn_image, Bf16RoPEAttention)
    assert isinstance(fast.linear1, Bf16Linear) and isinstance(fast.linear1.linear,
                                                               torch.nn.Linear)
    tgt, memory = torch.randn(1, 256, 256), torch.randn(1, 2 * 256 + 4, 64)
    pos, query_pos = torch.randn(1, 2 * 256 + 4, 64), torch.randn(1, 256, 256)
    with torch.inference_mode():
        want = layer(tgt, memory, pos=pos, query_pos=query_pos, num_k_exclude_rope=4)
        got = fast(tgt, memory, pos=pos, query_pos=query_pos, num_k_exclude_rope=4)
    assert got.dtype == torch.float32
    assert relative_error(got, want) < TOLERANCE


# SAM 2.1's image encoder ---------------------------------------------------------------------


def test_hiera_global_attention_stays_close(products):
    from sam2.modeling.backbones.hieradet import MultiScaleAttention

    from sam_backends.families.sam2.fast_encoder import GLOBAL_ATTENTION_PAIRS, Bf16GlobalAttention

    torch.manual_seed(5)
    upstream = MultiScaleAttention(96, 96, num_heads=2).eval()
    fast_upstream = copy.deepcopy(upstream).to(torch.bfloat16)
    fast = Bf16GlobalAttention(fast_upstream)
    x = torch.randn(1, 32, 32, 96)  # 1,024 tokens: a global block's size class
    assert (32 * 32) ** 2 >= GLOBAL_ATTENTION_PAIRS
    with torch.inference_mode():
        want = upstream(x)
        got = fast(x.to(torch.bfloat16))
    assert got.dtype == torch.bfloat16
    assert relative_error(got, want) < TOLERANCE
    if not products:  # the fused kernel on the same bf16 inputs: upstream's module exactly
        with torch.inference_mode():
            assert torch.equal(got, fast_upstream(x.to(torch.bfloat16)))


def test_hiera_pooled_and_windowed_attention_keep_the_fused_kernel():
    """Below the size of a global block the module is upstream's, bit for bit."""
    from sam2.modeling.backbones.hieradet import MultiScaleAttention

    from sam_backends.families.sam2.fast_encoder import Bf16GlobalAttention

    torch.manual_seed(6)
    upstream = MultiScaleAttention(
        96, 192, num_heads=2, q_pool=torch.nn.MaxPool2d(2, stride=2)).eval()
    upstream = upstream.to(torch.bfloat16)
    fast = Bf16GlobalAttention(copy.deepcopy(upstream))
    x = torch.randn(4, 16, 16, 96, dtype=torch.bfloat16)  # 4 windows, pooled queries
    with torch.inference_mode():
        assert torch.equal(fast(x), upstream(x))


def test_positional_tables_are_held_once_with_upstream_values():
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.position_encoding import PositionEmbeddingSine

    from sam_backends.families.sam2.fast_encoder import accelerate_sam2_encoder
    from sam_backends.testing.random_models import build_random_model, small_sam2_spec

    model = build_random_model(small_sam2_spec())
    reference = copy.deepcopy(model).to(torch.bfloat16)
    accelerate_sam2_encoder(model, torch.bfloat16)
    trunk, encoding = model.image_encoder.trunk, model.image_encoder.neck.position_encoding
    first = trunk._get_pos_embed((64, 64))
    assert torch.equal(first, Hiera._get_pos_embed(reference.image_encoder.trunk, (64, 64)))
    assert trunk._get_pos_embed((64, 64)) is first  # computed once
    for batch in (1, 2):
        x = torch.zeros(batch, 256, 32, 32, dtype=torch.bfloat16)
        want = PositionEmbeddingSine.forward(reference.image_encoder.neck.position_encoding, x)
        got = encoding(x)
        assert got.dtype == torch.bfloat16 and got.shape == want.shape
        assert torch.equal(got, want.to(torch.bfloat16))
    assert encoding(x).data_ptr() == got.data_ptr()  # one table, handed out as a view
    assert (32, 32) not in encoding.cache  # upstream's fp32 copy is not kept beside it
