"""What every format module provides, and the bit and rounding helpers they share.

A format's block layout is its NumPy structured dtype (`Format.dtype`): field names, order and
sizes as in ggml's `block_*` structs (ggml-common.h). Sizes in BLOCKS derive from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from gguf import GGMLQuantizationType

F32 = np.float32


@dataclass(frozen=True)
class Format:
    ggml_type: GGMLQuantizationType
    block_size: int                     # values per block
    dtype: np.dtype                     # one block
    dequantize: Callable[[np.ndarray], np.ndarray]           # (n,) dtype -> (n, block_size) f32
    quantize: Callable[[np.ndarray], np.ndarray]             # (n, block_size) f32 -> (n,) dtype
    random: Callable[[int, np.random.Generator, float], np.ndarray]
    # random(n, rng, scale) -> (n,) dtype: random bits, with finite scales chosen so that the
    # values have a std of roughly `scale`


def fp16_round(x: np.ndarray) -> np.ndarray:
    """The value ggml stores for a float scale (GGML_FP32_TO_FP16, round to nearest even)."""
    return np.asarray(x, F32).astype(np.float16)


def nearest_int(x: np.ndarray) -> np.ndarray:
    """ggml's nearest_int (the 1.5*2**23 trick): round half to even, as np.rint does."""
    return np.rint(x).astype(np.int32)


def seqsum(x: np.ndarray) -> np.ndarray:
    """Sum over the last axis in index order, in float32: the order of ggml's C loops
    (np.sum's pairwise order would round differently)."""
    total = x[..., 0].astype(F32)
    for i in range(1, x.shape[-1]):
        total += x[..., i]
    return total


def pack_fields(v: np.ndarray, bits: int) -> np.ndarray:
    """(..., k, m) small ints -> (..., m) bytes holding v[..., i, :] at bit i*bits."""
    out = np.zeros(v.shape[:-2] + v.shape[-1:], np.uint8)
    for i in range(v.shape[-2]):
        out |= v[..., i, :].astype(np.uint8) << np.uint8(i * bits)
    return out


def unpack_fields(packed: np.ndarray, bits: int, k: int) -> np.ndarray:
    """Inverse of pack_fields: (..., m) bytes -> (..., k, m) uint8."""
    shifts = (np.arange(k, dtype=np.uint8) * np.uint8(bits))[:, None]
    return (packed[..., None, :] >> shifts) & np.uint8((1 << bits) - 1)


def random_bits(dtype: np.dtype, n: int, rng: np.random.Generator) -> np.ndarray:
    """n blocks of random bytes, to be given sensible scales by the caller."""
    return rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).view(dtype)


def jittered(base: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-block fp16 scales base*U(0.5, 1.5): distinct per block, so a kernel that reads
    another block's scale shows up in a comparison."""
    return fp16_round(base * rng.uniform(0.5, 1.5, n).astype(F32))
