"""The gpt-oss forward pass (GPT-OSS-20B), as llama.cpp builds it (src/models/openai-moe.cpp)
and cuda/src/gpt_oss.cu runs it: RMSNorm; attention with biases on Q, K, V and the output,
NEOX rope with YaRN scaling, one learned sink logit per head and a sliding window on every
other layer (the shared steps of steps.py); a mixture of experts (router with bias, top-k,
softmax over the chosen logits) whose experts use OpenAI's clamped SwiGLU; an untied output
matrix."""
from __future__ import annotations

import numpy as np

from orcd.reference.model import KVCache, Model
from orcd.reference.ops import matmul, rmsnorm, softmax
from orcd.reference.steps import Pass, attention, begin, embed, logits, qkv, rope

# OpenAI's SwiGLU variant (llama.cpp LLM_FFN_SWIGLU_OAI_MOE).
SWIGLU_ALPHA, SWIGLU_LIMIT = 1.702, 7.0


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


def layer(p: Pass, i: int, x: np.ndarray) -> np.ndarray:
    blk, w, eps = f"blk.{i}", p.w, p.cfg.rms_eps
    q, k, v = qkv(p, blk, rmsnorm(x, w[f"{blk}.attn_norm.weight"], eps))
    q, k = rope(p, q, k)
    att = attention(p, i, q, k, v)
    x = x + matmul(att, w[f"{blk}.attn_output.weight"], w[f"{blk}.attn_output.bias"])  # residual
    h = rmsnorm(x, w[f"{blk}.post_attention_norm.weight"], eps)
    return x + moe(h, w, blk, p.cfg.expert_used_count)  # residual


def forward(model: Model, tokens: np.ndarray, cache: KVCache, last_only: bool = False) -> np.ndarray:
    """Logits (len(tokens), vocab) for `tokens` following the cache's positions, or of the
    last token only; fills the cache."""
    p = begin(model, cache, len(tokens))
    x = embed(p, tokens)
    for i in range(model.config.block_count):
        x = layer(p, i, x)
    cache.advance(len(tokens))
    return logits(p, x, last_only)
