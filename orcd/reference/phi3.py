"""The phi3 forward pass: one fused attn_qkv matrix (rows: Q, then K, then V), NEOX rope with
longrope's per-frequency factors when the file has them, and gate and up stacked in ffn_up
(rows [0, ff) the gate, [ff, 2 ff) the up). Attention is not windowed: llama.cpp ignores
Phi-3's sliding_window (2047) too, and the two agree only that way past 2047 tokens."""
from __future__ import annotations

import numpy as np

from orcd.models.rope import rope_scaling
from orcd.reference.model import KVCache, Model
from orcd.reference.ops import attention, matmul, rmsnorm, rope, rope_angles, swiglu


def forward(model: Model, tokens: np.ndarray, cache: KVCache, last_only: bool = False) -> np.ndarray:
    """Logits (len(tokens), vocab) for `tokens` following the cache's positions, or of the
    last token only; fills the cache."""
    cfg, w = model.config, model.tensors
    pos = cache.positions(len(tokens))
    cos, sin = rope_angles(pos, cfg.rope_dimension_count, cfg.rope_freq_base,
                           *rope_scaling(cfg, model.ctx, model.tensors.get))
    x = w["token_embd.weight"][tokens]
    for i in range(cfg.block_count):
        blk = f"blk.{i}"
        h = rmsnorm(x, w[f"{blk}.attn_norm.weight"], cfg.rms_eps)
        qkv = matmul(h, w[f"{blk}.attn_qkv.weight"])
        q, k, v = np.split(qkv, [cfg.q_dim, cfg.q_dim + cfg.k_dim], axis=-1)
        q = q.reshape(len(tokens), cfg.head_count, cfg.key_length)
        k = k.reshape(len(tokens), cfg.head_count_kv, cfg.key_length)
        v = v.reshape(len(tokens), cfg.head_count_kv, cfg.value_length)
        q, k = rope(q, cos, sin, neox=True), rope(k, cos, sin, neox=True)
        att = attention(q, *cache.store(i, k, v), pos)
        x = x + matmul(att, w[f"{blk}.attn_output.weight"])  # residual
        h = rmsnorm(x, w[f"{blk}.ffn_norm.weight"], cfg.rms_eps)
        gate, up = np.split(matmul(h, w[f"{blk}.ffn_up.weight"]), 2, axis=-1)
        x = x + matmul(swiglu(gate, up), w[f"{blk}.ffn_down.weight"])  # residual
    cache.advance(len(tokens))
    if last_only:
        x = x[-1:]
    x = rmsnorm(x, w["output_norm.weight"], cfg.rms_eps)
    return matmul(x, w["output.weight"])
