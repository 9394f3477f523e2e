"""Tensor data of synthetic models: real float weights (tiny) or random valid blocks (real)."""
from __future__ import annotations

import zlib

import numpy as np
from gguf import GGMLQuantizationType as T

from orcd import quant
from orcd.testing.quant_mix import is_float_tensor


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    """One stream per tensor, so a tensor's values do not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def float_values(name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Values of `shape` (GGUF order) scaled so activations stay near unit size: norms near 1,
    matrices at 1/sqrt(row), and the vocabulary projections at 2/sqrt(d) so that logits of a
    unit-RMS hidden state spread over a few units."""
    numpy_shape = tuple(reversed(shape))
    x = rng.standard_normal(numpy_shape, dtype=np.float32)
    if "norm" in name:
        return 1.0 + 0.1 * x
    if "attn_sinks" in name:
        return x
    if not name.endswith(".weight"):
        return 0.1 * x
    gain = 2.0 if name in ("token_embd.weight", "output.weight") else 1.0
    return x * np.float32(gain / np.sqrt(shape[0]))


def encode(x: np.ndarray, ggml_type: T) -> np.ndarray:
    if ggml_type == T.F32:
        return np.ascontiguousarray(x, np.float32)
    return quant.quantize(x, ggml_type)


def tensor_data(name: str, shape: tuple, ggml_type: T, rng: np.random.Generator, real: bool) -> np.ndarray:
    """Tiny: real float weights quantized. Real: random blocks for the matrices (fast, never a
    float copy of a multi-GB tensor), float values for the small F32 tensors."""
    if real and not is_float_tensor(name, shape):
        return quant.random_blocks(ggml_type, tuple(reversed(shape)), rng,
                                   scale=float(1.0 / np.sqrt(shape[0])))
    return encode(float_values(name, shape, rng), ggml_type)


def nbytes(shape: tuple, ggml_type: T) -> int:
    rows = int(np.prod(shape[1:], dtype=np.int64))
    return rows * quant.row_bytes(ggml_type, shape[0])
