"""Activations as the CUDA integer matvec takes them (cuda/src/matvec.cu, quantize_q8_1_kernel).

Per block of 32 values: d = max|x| / 127 and q = rint(x * (1 / d)) (round half to even), each
step correctly rounded in float32, q saturated to [-127, 127] (a subnormal d overflows 1 / d),
0 where d = 0 or x = 0; with the integer sum of q, which carries the weight formats' offsets and
mins. x is then d * q.
"""
from __future__ import annotations

import numpy as np

BLOCK = 32


def quantize_activations_q8_1(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (float32, length a multiple of 32) -> (q int8 [n], d float32 [n/32], sum int32 [n/32])."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    if x.size % BLOCK:
        raise ValueError(f"{x.size} activations are not a whole number of blocks of {BLOCK}")
    blocks = x.reshape(-1, BLOCK)
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(d > 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        scaled = np.nan_to_num(blocks * inv[:, None], nan=0.0)  # 0 * inf (subnormal d) is 0
    q = np.clip(np.rint(scaled), -127, 127).astype(np.int8)
    return q.reshape(-1), d.astype(np.float32), q.astype(np.int32).sum(axis=1, dtype=np.int32)


def dequantize_activations_q8_1(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The values d * q the integer path multiplies by, exactly (float64)."""
    return (q.reshape(-1, BLOCK).astype(np.float64) * d.astype(np.float64)[:, None]).reshape(-1)
