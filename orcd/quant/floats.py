"""Unquantized formats: F32, F16, BF16 (block size 1)."""
from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T

from .block import F32, Format

BF16_DTYPE = np.dtype("<u2")


def bf16_from_f32(x: np.ndarray) -> np.ndarray:
    """ggml_compute_fp32_to_bf16: NaN stays a quiet NaN, everything else rounds to nearest even."""
    n = np.ascontiguousarray(x, F32).view(np.uint32)
    is_nan = (n & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    quiet = (n & np.uint32(0xFFFF0000)) | np.uint32(0x00400000)
    rounded = n + (np.uint32(0x7FFF) + ((n >> np.uint32(16)) & np.uint32(1)))
    return (np.where(is_nan, quiet, rounded) >> np.uint32(16)).astype(BF16_DTYPE)


def f32_from_bf16(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << np.uint32(16)).view(F32)


def _float_format(ggml_type, dtype, to_f32, from_f32):
    return Format(ggml_type, 1, np.dtype(dtype),
                  dequantize=lambda b: to_f32(b)[:, None],
                  quantize=lambda x: from_f32(x[:, 0]),
                  random=lambda n, rng, scale: from_f32(rng.standard_normal(n, F32) * F32(scale)))


FORMATS = (
    _float_format(T.F32, "<f4", lambda b: b.astype(F32), lambda x: x.astype("<f4")),
    _float_format(T.F16, "<f2", lambda b: b.astype(F32), lambda x: x.astype("<f2")),
    _float_format(T.BF16, BF16_DTYPE, f32_from_bf16, bf16_from_f32),
)
