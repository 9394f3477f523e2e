"""The llama forward pass (SmolLM2): RMSNorm, NORM rope over permuted Q/K rows, grouped-query
attention, SwiGLU feed-forward; the output matrix may be the token embedding (tied)."""
from __future__ import annotations

import numpy as np

from orcd.reference.model import KVCache, Model
from orcd.reference.ops import attention, matmul, rmsnorm, rope, rope_angles, swiglu


def forward(model: Model, tokens: np.ndarray, cache: KVCache, last_only: bool = False) -> np.ndarray:
    """Logits (len(tokens), vocab) for `tokens` following the cache's positions, or of the
    last token only; fills the cache."""
    cfg, w = model.config, model.tensors
    pos = cache.positions(len(tokens))
    cos, sin = rope_angles(pos, cfg.rope_dimension_count, cfg.rope_freq_base)
    x = w["token_embd.weight"][tokens]
    for i in range(cfg.block_count):
        blk = f"blk.{i}"
        h = rmsnorm(x, w[f"{blk}.attn_norm.weight"], cfg.rms_eps)
        q = matmul(h, w[f"{blk}.attn_q.weight"]).reshape(len(tokens), cfg.head_count, cfg.key_length)
        k = matmul(h, w[f"{blk}.attn_k.weight"]).reshape(len(tokens), cfg.head_count_kv, cfg.key_length)
        v = matmul(h, w[f"{blk}.attn_v.weight"]).reshape(len(tokens), cfg.head_count_kv, cfg.value_length)
        q, k = rope(q, cos, sin, neox=False), rope(k, cos, sin, neox=False)
        att = attention(q, *cache.store(i, k, v), pos)
        x = x + matmul(att, w[f"{blk}.attn_output.weight"])  # residual
        h = rmsnorm(x, w[f"{blk}.ffn_norm.weight"], cfg.rms_eps)
        ffn = swiglu(matmul(h, w[f"{blk}.ffn_gate.weight"]), matmul(h, w[f"{blk}.ffn_up.weight"]))
        x = x + matmul(ffn, w[f"{blk}.ffn_down.weight"])  # residual
    cache.advance(len(tokens))
    if last_only:
        x = x[-1:]
    x = rmsnorm(x, w["output_norm.weight"], cfg.rms_eps)
    return matmul(x, w.get("output.weight", w["token_embd.weight"]))
