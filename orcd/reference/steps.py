"""The steps of a forward pass, shared by the architectures and named as cuda/src/pass.cu
names them. A layer's optional tensors pick its variant, as on the device: Q, K and V biases
(qwen2, gpt-oss), phi3's fused attn_qkv, gpt-oss's attention sinks and sliding window."""
from __future__ import annotations

import dataclasses

import numpy as np

from orcd.models import ModelConfig
from orcd.models.rope import rope_scaling
from orcd.reference import ops
from orcd.reference.model import KVCache, Model


@dataclasses.dataclass(frozen=True)
class Pass:
    """One forward pass over tokens at the cache's next positions, with their rope angles."""
    model: Model
    cache: KVCache
    pos: np.ndarray
    cos: np.ndarray
    sin: np.ndarray

    @property
    def cfg(self) -> ModelConfig:
        return self.model.config

    @property
    def w(self) -> dict[str, np.ndarray]:
        return self.model.tensors


def begin(model: Model, cache: KVCache, n: int) -> Pass:
    """The pass of n tokens; rope angles with the file's scaling (phi3's longrope, YaRN)."""
    cfg = model.config
    pos = cache.positions(n)
    cos, sin = ops.rope_angles(pos, cfg.rope_dimension_count, cfg.rope_freq_base,
                               *rope_scaling(cfg, model.ctx, model.tensors.get))
    return Pass(model, cache, pos, cos, sin)


def embed(p: Pass, tokens: np.ndarray) -> np.ndarray:
    return p.w["token_embd.weight"][tokens]


def qkv(p: Pass, blk: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q, K, V of h as (tokens, heads, head_dim): from the fused attn_qkv (rows Q, then K, then
    V) or from three matrices, each plus its bias when the layer has one."""
    cfg, w = p.cfg, p.w
    fused = w.get(f"{blk}.attn_qkv.weight")
    if fused is not None:
        q, k, v = np.split(ops.matmul(h, fused), [cfg.q_dim, cfg.q_dim + cfg.k_dim], axis=-1)
    else:
        q, k, v = (ops.matmul(h, w[f"{blk}.attn_{x}.weight"], w.get(f"{blk}.attn_{x}.bias"))
                   for x in "qkv")
    n = len(h)
    return (q.reshape(n, cfg.head_count, cfg.key_length),
            k.reshape(n, cfg.head_count_kv, cfg.key_length),
            v.reshape(n, cfg.head_count_kv, cfg.value_length))


def rope(p: Pass, q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rope on Q and K, in the architecture's pairing (ModelConfig.rope_neox)."""
    neox = p.cfg.rope_neox
    return ops.rope(q, p.cos, p.sin, neox), ops.rope(k, p.cos, p.sin, neox)


def attention(p: Pass, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """K, V into the layer's cache, then attention over it: with the layer's sink logits and
    sliding window when it has them."""
    window = p.cfg.sliding_window if p.cfg.uses_sliding_window(layer) else 0
    sinks = p.w.get(f"blk.{layer}.attn_sinks.weight")
    return ops.attention(q, *p.cache.store(layer, k, v), p.pos, sinks, window)


def logits(p: Pass, x: np.ndarray, last_only: bool) -> np.ndarray:
    """Logits of every row of x, or of the last: rmsnorm, then output (the token embedding
    when the file has no output.weight)."""
    if last_only:
        x = x[-1:]
    x = ops.rmsnorm(x, p.w["output_norm.weight"], p.cfg.rms_eps)
    return ops.matmul(x, p.w.get("output.weight", p.w["token_embd.weight"]))
