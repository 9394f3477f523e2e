import numpy as np
import pytest

from orcd.reference import KVCache, forward, load
from orcd.reference.ops import attention, rmsnorm, rope, rope_angles, softmax
from orcd.testing.hf import permute_qk

rng = np.random.default_rng(0)


def test_rmsnorm_is_the_formula():
    x, w = rng.standard_normal((3, 64)).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt(np.mean(x64**2, axis=-1, keepdims=True) + 1e-5) * w
    np.testing.assert_allclose(rmsnorm(x, w, 1e-5), expected, rtol=1e-6)  # float32 rounding


def test_norm_rope_on_permuted_rows_is_neox_rope():
    """llama-arch files permute Q/K rows so that NORM rope on them equals NEOX rope on the
    original rows: the converter's permutation and our two ropes must agree."""
    heads, head_dim = 3, 16
    w = rng.standard_normal((heads * head_dim, 8)).astype(np.float32)
    h = rng.standard_normal((5, 8)).astype(np.float32)
    cos, sin = rope_angles(np.arange(5), head_dim, 10000.0)
    neox = rope((h @ w.T).reshape(5, heads, head_dim), cos, sin, neox=True)
    norm = rope((h @ permute_qk(w, heads).T).reshape(5, heads, head_dim), cos, sin, neox=False)
    # the permutation maps feature i to 2i and i + d/2 to 2i + 1 within each head
    np.testing.assert_allclose(norm[..., 0::2], neox[..., : head_dim // 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm[..., 1::2], neox[..., head_dim // 2:], rtol=1e-5, atol=1e-6)


def test_rope_angles_divide_by_factors_and_scale():
    factors = np.array([1.0, 2.0, 4.0, 8.0], np.float32)
    cos, sin = rope_angles(np.array([3]), 8, 100.0, factors, scale=1.5)
    theta = 3 * 100.0 ** (-np.arange(0, 8, 2) / 8) / factors
    np.testing.assert_allclose(cos[0], 1.5 * np.cos(theta), rtol=1e-6)
    np.testing.assert_allclose(sin[0], 1.5 * np.sin(theta), rtol=1e-6)


def test_attention_is_causal_grouped_query_attention():
    n, heads, kv_heads, d, start = 4, 6, 2, 8, 3
    q = rng.standard_normal((n, heads, d)).astype(np.float32)
    k = rng.standard_normal((kv_heads, start + n, d)).astype(np.float32)
    v = rng.standard_normal((kv_heads, start + n, d)).astype(np.float32)
    out = attention(q, k, v, np.arange(start, start + n)).reshape(n, heads, d)
    for t in range(n):
        for h in range(heads):
            g = h // (heads // kv_heads)
            keys = start + t + 1
            p = softmax(k[g, :keys] @ q[t, h] / np.sqrt(d))
            np.testing.assert_allclose(out[t, h], p @ v[g, :keys], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3"])
def test_prefill_and_decode_agree(synth_model, arch):
    """The KV cache path: one prefill, a prefill in two chunks, and token-by-token decode give
    the same logits."""
    model = load(synth_model(arch), 64)
    ids = rng.integers(0, model.config.vocab_size, 24)
    whole = forward(model, ids, KVCache(model.config, 64))
    cache = KVCache(model.config, 64)
    chunked = np.concatenate([forward(model, ids[:10], cache), forward(model, ids[10:], cache)])
    cache = KVCache(model.config, 64)
    stepped = np.concatenate([forward(model, [t], cache) for t in ids])
    # float32: the attention sums run over different shapes, so rounding differs a little
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-4)
    np.testing.assert_allclose(stepped, whole, rtol=0, atol=1e-4)
    np.testing.assert_allclose(forward(model, ids, KVCache(model.config, 64), last_only=True), whole[-1:],
                               rtol=0, atol=1e-4)


def test_cache_refuses_to_overflow(synth_model):
    model = load(synth_model("llama"), 8)
    cache = KVCache(model.config, 8)
    forward(model, [1, 2, 3, 4, 5, 6], cache)
    with pytest.raises(ValueError, match="exceed the context of 8"):
        forward(model, [7, 8, 9], cache)
