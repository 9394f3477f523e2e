"""The steps of a transformer forward pass in NumPy, named as in llama2.c's run.c.

Activations are float32 arrays whose last axis is the feature axis; weights are in NumPy
order (rows = outputs, last axis = the contiguous GGUF row), so `matmul(x, w)` is x @ wᵀ.
"""
from __future__ import annotations

import numpy as np


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x²) + eps) * weight, per row."""
    ms = np.mean(np.square(x, dtype=np.float32), axis=-1, keepdims=True)
    return x * (1.0 / np.sqrt(ms + np.float32(eps))) * weight


def matmul(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    y = x @ w.T
    return y if bias is None else y + bias


def rope_angles(positions: np.ndarray, dims: int, base: float,
                factors: np.ndarray | None = None, scale: float = 1.0):
    """cos and sin of θ_i = pos · base^(-2i/dims) / factor_i for i < dims/2, each times `scale`
    (the longrope attention factor). Angles in float64: exact to float32 at any position."""
    inv_freq = base ** (-np.arange(0, dims, 2, dtype=np.float64) / dims)
    if factors is not None:
        inv_freq = inv_freq / factors.astype(np.float64)
    theta = positions.astype(np.float64)[:, None] * inv_freq[None, :]
    return (np.cos(theta) * scale).astype(np.float32), (np.sin(theta) * scale).astype(np.float32)


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, neox: bool) -> np.ndarray:
    """Rotate the first 2·len(cos[0]) features of each head of x (tokens, heads, head_dim).

    llama.cpp's NORM rope rotates pairs (2i, 2i+1) — llama-arch files carry Q/K rows permuted
    for it — and NEOX rope (qwen2, phi3) rotates pairs (i, i + dims/2).
    """
    dims = 2 * cos.shape[-1]
    cos, sin = cos[:, None, :], sin[:, None, :]
    out = x.copy()
    if neox:
        a, b = x[..., : dims // 2], x[..., dims // 2: dims]
        out[..., : dims // 2] = a * cos - b * sin
        out[..., dims // 2: dims] = a * sin + b * cos
    else:
        a, b = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2] = a * cos - b * sin
        out[..., 1:dims:2] = a * sin + b * cos
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_positions: np.ndarray,
              sinks: np.ndarray | None = None, window: int = 0) -> np.ndarray:
    """Causal grouped-query attention.

    q (tokens, head_count, head_dim) at absolute `q_positions`; k, v (head_count_kv, keys,
    head_dim) hold the keys of positions 0..keys-1. Query head h reads kv head
    h // (head_count / head_count_kv), as llama.cpp and transformers do. With window > 0 a
    query at p sees the keys at p - window < j <= p (llama.cpp LLAMA_SWA_TYPE_STANDARD).
    sinks (head_count,): one learned logit per head joins its softmax, taking probability mass
    and adding no value (gpt-oss). Returns (tokens, head_count · head_dim).
    """
    n, heads, head_dim = q.shape
    kv_heads, keys, _ = k.shape
    group = heads // kv_heads
    qg = q.reshape(n, kv_heads, group, head_dim).transpose(1, 0, 2, 3).reshape(kv_heads, n * group, head_dim)
    scores = (qg @ k.transpose(0, 2, 1)) * np.float32(1.0 / np.sqrt(head_dim))
    distance = q_positions[:, None] - np.arange(keys)[None, :]
    hidden = (distance < 0) | ((distance >= window) if window > 0 else False)
    if hidden.any():
        masked = np.where(hidden[None, :, None, :], -np.inf, scores.reshape(kv_heads, n, group, keys))
        scores = masked.astype(np.float32).reshape(kv_heads, n * group, keys)
    if sinks is None:
        p = softmax(scores)
    else:
        sink = np.broadcast_to(sinks.astype(np.float32).reshape(kv_heads, 1, group, 1),
                               (kv_heads, n, group, 1)).reshape(kv_heads, n * group, 1)
        p = softmax(np.concatenate([scores, sink], axis=-1))[..., :keys]
    out = p @ v
    return out.reshape(kv_heads, n, group, head_dim).transpose(1, 0, 2, 3).reshape(n, heads * head_dim)


def silu(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the right limit, -0
        return x / (1.0 + np.exp(-x))


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    return silu(gate) * up
