"""Rope scaling, once for the NumPy reference and the CUDA engine: the per-pair divisors of the
rope frequencies and the scale of cos and sin, for phi3's longrope (from the file's factor
tensors) and gpt-oss's YaRN (computed as llama.cpp's ggml_rope_yarn does)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from orcd.models.config import ModelConfig

# YaRN's ramp edges, in rotations per original context (ggml_rope_yarn_corr_dims defaults).
BETA_FAST, BETA_SLOW = 32.0, 1.0


def original_context(cfg: ModelConfig) -> int:
    """llama.cpp's n_ctx_orig_yarn: the file's original context, else the trained one."""
    return cfg.rope_scaling_original_context_length or cfg.context_length


def longrope_tensor(cfg: ModelConfig, ctx: int) -> str:
    """Phi-3 longrope's factor tensor for a context: the long factors when it exceeds the
    original one, as llama.cpp picks them (llm_graph_context::build_rope_factors)."""
    return "rope_factors_long.weight" if ctx > original_context(cfg) else "rope_factors_short.weight"


def yarn_corr_dims(dims: int, original_ctx: int, base: float) -> tuple[float, float]:
    """The pair indices where YaRN's ramp starts and ends: the dimension whose wavelength fits
    BETA_FAST (BETA_SLOW) rotations into the original context, floored (ceiled) and clipped
    as ggml_rope_yarn_corr_dims does."""
    def corr_dim(rotations: float) -> float:
        return dims * math.log(original_ctx / (rotations * 2 * math.pi)) / (2 * math.log(base))
    low, high = float(math.floor(corr_dim(BETA_FAST))), float(math.ceil(corr_dim(BETA_SLOW)))
    return max(0.0, low), min(dims - 1.0, high)


def yarn_factors(cfg: ModelConfig) -> np.ndarray:
    """Per-pair divisors of the rope frequencies: 1 (extrapolate) for the fast pairs below the
    ramp, the scaling factor (interpolate) above it, a linear mix between (ggml's rope_yarn:
    θ = θ_interp·(1 - ramp) + θ_extrap·ramp with θ_interp = θ_extrap / factor)."""
    low, high = yarn_corr_dims(cfg.rope_dimension_count, original_context(cfg), cfg.rope_freq_base)
    pair = np.arange(cfg.rope_dimension_count // 2, dtype=np.float64)
    ramp = 1.0 - np.clip((pair - low) / max(0.001, high - low), 0.0, 1.0)
    return 1.0 / ((1.0 - ramp) / cfg.rope_scaling_factor + ramp)


def yarn_mscale(cfg: ModelConfig) -> float:
    """YaRN's attention temperature, applied to cos and sin (so to q·k squared):
    0.1·ln(factor) + 1, times the file's attn_factor (llama.cpp: rope_yarn's mscale with
    llama_context's yarn_attn_factor, whose own mscale term cancels)."""
    return cfg.rope_scaling_attn_factor * (1.0 + 0.1 * math.log(cfg.rope_scaling_factor))


def uses_yarn(cfg: ModelConfig) -> bool:
    return cfg.rope_scaling_type == "yarn" and cfg.rope_scaling_factor > 1.0


def rope_scaling(cfg: ModelConfig, ctx: int,
                 tensor: Callable[[str], np.ndarray | None]) -> tuple[np.ndarray | None, float]:
    """(divisors of the rope frequencies as float64, or None; the scale of cos and sin) for a
    model run with a KV cache of ctx positions; `tensor(name)` gives a float tensor of the file
    or None."""
    if uses_yarn(cfg):
        return yarn_factors(cfg), yarn_mscale(cfg)
    if cfg.arch != "phi3":
        return None, 1.0
    factors = tensor(longrope_tensor(cfg, ctx))
    return (None if factors is None else np.asarray(factors, dtype=np.float64),
            cfg.rope_scaling_attn_factor)
