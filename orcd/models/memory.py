"""Parameter count and the VRAM a model needs (SPEC.md §4: weights + KV cache + scratch)."""
from __future__ import annotations

import dataclasses
import math

from orcd.models.config import ModelConfig
from orcd.models.tensors import expected_tensors

KV_BYTES = 2  # the KV cache is FP16
ACTIVATION_BYTES = 4  # activations and logits are F32
PREFILL_CHUNK = 512  # tokens of a prompt processed per forward pass


@dataclasses.dataclass(frozen=True)
class VramEstimate:
    weights: int
    kv_cache: int
    scratch: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.scratch


def parameter_count(cfg: ModelConfig) -> int:
    return sum(math.prod(shape) for shape in expected_tensors(cfg).values())


def kv_cache_bytes(cfg: ModelConfig, ctx: int) -> int:
    """K and V for every layer and position; sliding-window layers are counted at full
    length too, so the estimate never falls short of what an engine may allocate."""
    per_token = cfg.block_count * (cfg.k_dim + cfg.v_dim) * KV_BYTES
    return per_token * ctx


def scratch_bytes(cfg: ModelConfig, ctx: int) -> int:
    """Activations of one prefill chunk: the residual stream and its normed copy, q/k/v,
    the feed-forward hidden state (gate, up), the attention scores of the chunk against
    the whole context, and the logits row with its sampling copy."""
    ffn = cfg.expert_feed_forward_length * cfg.expert_used_count if cfg.is_moe else cfg.feed_forward_length
    per_token = 2 * cfg.embedding_length + cfg.q_dim + cfg.k_dim + cfg.v_dim + 2 * ffn
    scores = cfg.head_count * PREFILL_CHUNK * ctx
    logits = 2 * cfg.vocab_size
    return (PREFILL_CHUNK * per_token + scores + logits) * ACTIVATION_BYTES


def vram_estimate(cfg: ModelConfig, weight_bytes: int, ctx: int) -> VramEstimate:
    return VramEstimate(weight_bytes, kv_cache_bytes(cfg, ctx), scratch_bytes(cfg, ctx))
