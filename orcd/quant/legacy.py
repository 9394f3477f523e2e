"""ggml's block-32 formats: Q4_0, Q5_0 (x = d*(q - 2**(b-1))), Q4_1, Q5_1 (x = d*q + m), Q8_0.

Quantizers follow quantize_row_q{4,5}_{0,1}_ref and quantize_row_q8_0_ref (ggml-quants.c)
operation for operation, so the bytes equal ggml's and gguf-py's.
"""
from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T

from .block import F32, Format, fp16_round, jittered, pack_fields, random_bits, unpack_fields

QK = 32

Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
Q4_1 = np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", (QK // 2,))])
Q5_0 = np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", (QK // 2,))])
Q5_1 = np.dtype([("d", "<f2"), ("m", "<f2"), ("qh", "<u4"), ("qs", "u1", (QK // 2,))])
Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (QK,))])

# std of the unscaled values q - offset (symmetric) or q (affine) for uniform random q
UNIT_STD = {bits: np.sqrt((4**bits - 1) / 12) for bits in (4, 5, 8)}


def _quants(blocks, bits):
    """The b-bit unsigned quants: low nibbles of qs hold elements 0..15, high nibbles 16..31;
    bit j of qh is the fifth bit of element j."""
    q = unpack_fields(blocks["qs"], 4, 2).reshape(-1, QK)
    if bits == 5:
        high = (blocks["qh"][:, None] >> np.arange(QK, dtype=np.uint32)) & np.uint32(1)
        q |= high.astype(np.uint8) << np.uint8(4)
    return q


def _store_quants(blocks, q, bits):
    blocks["qs"] = pack_fields(q.reshape(-1, 2, QK // 2) & np.uint8(15), 4)
    if bits == 5:
        high = np.packbits(q >> np.uint8(4), axis=-1, bitorder="little")
        blocks["qh"] = high.view("<u4")[:, 0]


def _symmetric(ggml_type, dtype, bits):
    offset = 1 << (bits - 1)
    qmax = (1 << bits) - 1

    def dequantize(blocks):
        q = _quants(blocks, bits).astype(np.int8) - np.int8(offset)
        return blocks["d"].astype(F32)[:, None] * q.astype(F32)

    def quantize(x):
        signed_max = np.take_along_axis(x, np.abs(x).argmax(-1)[:, None], -1)
        d = signed_max / F32(-offset)  # the largest magnitude maps to -offset
        inv_d = np.where(d == 0, F32(0), F32(1) / d)
        q = np.minimum(np.trunc(x * inv_d + F32(offset + 0.5)).astype(np.uint8), qmax)
        blocks = np.zeros(len(x), dtype)
        blocks["d"] = fp16_round(d[:, 0])
        _store_quants(blocks, q, bits)
        return blocks

    def random(n, rng, scale):
        blocks = random_bits(dtype, n, rng)
        blocks["d"] = jittered(scale / UNIT_STD[bits], n, rng)
        return blocks

    return Format(ggml_type, QK, dtype, dequantize, quantize, random)


def _affine(ggml_type, dtype, bits):
    qmax = (1 << bits) - 1

    def dequantize(blocks):
        q = _quants(blocks, bits).astype(F32)
        return blocks["d"].astype(F32)[:, None] * q + blocks["m"].astype(F32)[:, None]

    def quantize(x):
        lo, hi = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
        d = (hi - lo) / F32(qmax)
        inv_d = np.where(d == 0, F32(0), F32(1) / d)
        # convert, then clamp, as C's MIN(qmax, (int8_t)v): an inf v (subnormal d) gives 0
        q = np.minimum(np.trunc((x - lo) * inv_d + F32(0.5)).astype(np.uint8), qmax)
        blocks = np.zeros(len(x), dtype)
        blocks["d"] = fp16_round(d[:, 0])
        blocks["m"] = fp16_round(lo[:, 0])
        _store_quants(blocks, q, bits)
        return blocks

    def random(n, rng, scale):
        blocks = random_bits(dtype, n, rng)
        blocks["d"] = jittered(scale / UNIT_STD[bits], n, rng)
        blocks["m"] = fp16_round(blocks["d"].astype(F32) * F32(-qmax / 2))  # centres values on 0
        return blocks

    return Format(ggml_type, QK, dtype, dequantize, quantize, random)


def _round_half_away(v):
    """C roundf, exactly: a + 0.5 would round up values just below one half."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= F32(0.5)), v)


def _q8_0():
    def dequantize(blocks):
        return blocks["qs"].astype(F32) * blocks["d"].astype(F32)[:, None]

    def quantize(x):
        d = np.abs(x).max(-1, keepdims=True) / F32(127)
        inv_d = np.where(d == 0, F32(0), F32(1) / d)
        blocks = np.zeros(len(x), Q8_0)
        blocks["d"] = fp16_round(d[:, 0])
        blocks["qs"] = _round_half_away(x * inv_d).astype(np.int8)
        return blocks

    def random(n, rng, scale):
        blocks = random_bits(Q8_0, n, rng)
        blocks["d"] = jittered(scale / UNIT_STD[8], n, rng)
        return blocks

    return Format(T.Q8_0, QK, Q8_0, dequantize, quantize, random)


FORMATS = (
    _symmetric(T.Q4_0, Q4_0, 4),
    _affine(T.Q4_1, Q4_1, 4),
    _symmetric(T.Q5_0, Q5_0, 5),
    _affine(T.Q5_1, Q5_1, 5),
    _q8_0(),
)
