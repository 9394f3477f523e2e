"""The gpt-oss forward pass (GPT-OSS-20B), as llama.cpp builds it (src/models/openai-moe.cpp):
RMSNorm; attention with biases on Q, K, V and the output, NEOX rope with YaRN scaling, one
learned sink logit per head and a sliding window on every other layer; a mixture of experts
(router with bias, top-k, softmax over the chosen logits) whose experts use OpenAI's clamped
SwiGLU; an untied output matrix."""
from __future__ import annotations

import numpy as np

from orcd.models.rope import rope_scaling
from orcd.reference.model import KVCache, Model
from orcd.reference.ops import matmul, rmsnorm, rope, rope_angles, softmax

# OpenAI's SwiGLU variant (llama.cpp LLM_FFN_SWIGLU_OAI_MOE).
SWIGLU_ALPHA, SWIGLU_LIMIT = 1.702, 7.0


def attention_with_sinks(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_positions: np.ndarray,
                         sinks: np.ndarray, window: int) -> np.ndarray:
    """Causal grouped-query attention whose softmax per head also holds that head's sink
    logit, which takes probability mass and adds no value; with window > 0 a query at p sees
    the keys at p - window < j <= p (llama.cpp LLAMA_SWA_TYPE_STANDARD).

    q (tokens, head_count, head_dim); k, v (head_count_kv, keys, head_dim) for positions
    0..keys-1; returns (tokens, head_count · head_dim).
    """
    n, heads, head_dim = q.shape
    kv_heads, keys, _ = k.shape
    group = heads // kv_heads
    qg = q.reshape(n, kv_heads, group, head_dim).transpose(1, 2, 0, 3)  # (kv, group, n, d)
    # 1/sqrt(n_rot), as llama.cpp scales gpt-oss (n_rot = head_dim)
    scores = (qg @ k[:, None].transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(head_dim))
    distance = q_positions[:, None] - np.arange(keys)[None, :]
    hidden = (distance < 0) | ((distance >= window) if window > 0 else False)
    scores = np.where(hidden, np.float32(-np.inf), scores)
    sink = np.broadcast_to(sinks.reshape(kv_heads, group, 1, 1), scores.shape[:3] + (1,))
    p = softmax(np.concatenate([scores, sink.astype(np.float32)], axis=-1))[..., :keys]
    out = p @ v[:, None]  # (kv, group, n, d)
    return out.transpose(2, 0, 1, 3).reshape(n, heads * head_dim)


def swiglu_oai(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """gate·σ(α·gate)·(up + 1), gate clamped above and up both ways at the limit."""
    gate = np.minimum(gate, np.float32(SWIGLU_LIMIT))
    up = np.clip(up, np.float32(-SWIGLU_LIMIT), np.float32(SWIGLU_LIMIT))
    with np.errstate(over="ignore"):  # exp overflow for gate << 0 gives the right limit, -0
        glu = gate / (1.0 + np.exp(np.float32(-SWIGLU_ALPHA) * gate))
    return glu * (up + 1.0)


def route(h: np.ndarray, w: dict, blk: str, used: int) -> tuple[np.ndarray, np.ndarray]:
    """The `used` experts of each token, by router logit (highest first), and their weights:
    the softmax of the chosen logits alone (LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT)."""
    logits = matmul(h, w[f"{blk}.ffn_gate_inp.weight"], w[f"{blk}.ffn_gate_inp.bias"])
    experts = np.argsort(-logits, axis=-1, kind="stable")[:, :used]
    return experts, softmax(np.take_along_axis(logits, experts, axis=-1))


def moe(h: np.ndarray, w: dict, blk: str, used: int) -> np.ndarray:
    """Σ over each token's chosen experts of weight · down(swiglu_oai(gate(h), up(h)))."""
    experts, weights = route(h, w, blk, used)
    out = np.zeros_like(h)
    for e in np.unique(experts):
        rows, slot = np.nonzero(experts == e)
        x = h[rows]
        gate = matmul(x, w[f"{blk}.ffn_gate_exps.weight"][e], w[f"{blk}.ffn_gate_exps.bias"][e])
        up = matmul(x, w[f"{blk}.ffn_up_exps.weight"][e], w[f"{blk}.ffn_up_exps.bias"][e])
        down = matmul(swiglu_oai(gate, up), w[f"{blk}.ffn_down_exps.weight"][e],
                      w[f"{blk}.ffn_down_exps.bias"][e])
        out[rows] += weights[rows, slot, None] * down
    return out


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
        q = matmul(h, w[f"{blk}.attn_q.weight"], w[f"{blk}.attn_q.bias"])
        k = matmul(h, w[f"{blk}.attn_k.weight"], w[f"{blk}.attn_k.bias"])
        v = matmul(h, w[f"{blk}.attn_v.weight"], w[f"{blk}.attn_v.bias"])
        q = q.reshape(len(tokens), cfg.head_count, cfg.key_length)
        k = k.reshape(len(tokens), cfg.head_count_kv, cfg.key_length)
        v = v.reshape(len(tokens), cfg.head_count_kv, cfg.value_length)
        q, k = rope(q, cos, sin, neox=True), rope(k, cos, sin, neox=True)
        window = cfg.sliding_window if cfg.uses_sliding_window(i) else 0
        sinks = w[f"{blk}.attn_sinks.weight"]
        att = attention_with_sinks(q, *cache.store(i, k, v), pos, sinks, window)
        x = x + matmul(att, w[f"{blk}.attn_output.weight"], w[f"{blk}.attn_output.bias"])  # residual
        h = rmsnorm(x, w[f"{blk}.post_attention_norm.weight"], cfg.rms_eps)
        x = x + moe(h, w, blk, cfg.expert_used_count)  # residual
    cache.advance(len(tokens))
    if last_only:
        x = x[-1:]
    x = rmsnorm(x, w["output_norm.weight"], cfg.rms_eps)
    return matmul(x, w["output.weight"])
