"""Parameter count and the VRAM a model needs (SPEC.md §4: weights + KV cache + scratch).

The total is the CUDA engine's own (orcd_engine_vram_required), the figure it checks against
free memory before a load; the KV cache is computed here and scratch is the rest."""
from __future__ import annotations

import dataclasses
import math

from orcd.models.config import ModelConfig
from orcd.models.tensors import expected_tensors

KV_BYTES = 2  # the KV cache is FP16


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
    """K and V for every layer and position, sliding-window layers at full length too, as the
    CUDA engine allocates them."""
    per_token = cfg.block_count * (cfg.k_dim + cfg.v_dim) * KV_BYTES
    return per_token * ctx


def vram_estimate(cfg: ModelConfig, weight_bytes: int, ctx: int) -> VramEstimate:
    from orcd.engine.cuda import binding  # here: orcd.engine imports orcd.models
    total = binding().vram_required(cfg, ctx, weight_bytes)
    kv = kv_cache_bytes(cfg, ctx)
    return VramEstimate(weight_bytes, kv, total - weight_bytes - kv)
