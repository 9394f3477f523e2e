"""The forward pass of the llama family (llama, qwen2, phi3), as cuda/src/llama.cu: RMSNorm,
Q/K/V (qwen2 adds biases, phi3 fuses them in attn_qkv), rope (NORM pairs over llama's permuted
Q/K rows, NEOX for qwen2 and phi3, phi3's longrope factors when the file has them), grouped-
query attention over the KV cache, a SwiGLU feed-forward (phi3 stacks gate and up in ffn_up);
the output matrix may be the token embedding (tied). phi3's attention is not windowed:
llama.cpp ignores Phi-3's sliding_window (2047) too, and the two agree only that way past 2047
tokens."""
from __future__ import annotations

import numpy as np

from orcd.reference.model import KVCache, Model
from orcd.reference.ops import matmul, rmsnorm, swiglu
from orcd.reference.steps import Pass, attention, begin, embed, logits, qkv, rope


def ffn(p: Pass, blk: str, h: np.ndarray) -> np.ndarray:
    """ffn_down(swiglu(gate, up)); phi3's ffn_up holds both, rows [0, ff) the gate."""
    w = p.w
    if f"{blk}.ffn_gate.weight" in w:
        gate, up = matmul(h, w[f"{blk}.ffn_gate.weight"]), matmul(h, w[f"{blk}.ffn_up.weight"])
    else:
        gate, up = np.split(matmul(h, w[f"{blk}.ffn_up.weight"]), 2, axis=-1)
    return matmul(swiglu(gate, up), w[f"{blk}.ffn_down.weight"])


def layer(p: Pass, i: int, x: np.ndarray) -> np.ndarray:
    blk, w, eps = f"blk.{i}", p.w, p.cfg.rms_eps
    q, k, v = qkv(p, blk, rmsnorm(x, w[f"{blk}.attn_norm.weight"], eps))
    q, k = rope(p, q, k)
    x = x + matmul(attention(p, i, q, k, v), w[f"{blk}.attn_output.weight"])  # residual
    return x + ffn(p, blk, rmsnorm(x, w[f"{blk}.ffn_norm.weight"], eps))  # residual


def forward(model: Model, tokens: np.ndarray, cache: KVCache, last_only: bool = False) -> np.ndarray:
    """Logits (len(tokens), vocab) for `tokens` following the cache's positions, or of the
    last token only; fills the cache."""
    p = begin(model, cache, len(tokens))
    x = embed(p, tokens)
    for i in range(model.config.block_count):
        x = layer(p, i, x)
    cache.advance(len(tokens))
    return logits(p, x, last_only)
