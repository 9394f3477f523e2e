"""ggml's K-quants, super-blocks of QK_K = 256 values:
Q4_K, Q5_K: x = d*sc[j]*q - dmin*m[j] over 8 sub-blocks of 32 (6-bit sc, m packed in 12 bytes);
Q6_K:       x = d*sc[j]*(q - 32) over 16 sub-blocks of 16 (int8 sc).

Quantizers follow quantize_row_q{4,5,6}_K_ref (ggml-quants.c) step for step.
"""
from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T

from .block import (F32, Format, fp16_round, jittered, nearest_int, pack_fields, random_bits,
                    seqsum, unpack_fields)
from .kquant_search import GROUP_MAX_EPS, make_qkx2_quants, make_qx_quants

QK_K = 256

Q4_K = np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)),
                 ("qs", "u1", (QK_K // 2,))])
Q5_K = np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)),
                 ("qh", "u1", (QK_K // 8,)), ("qs", "u1", (QK_K // 2,))])
Q6_K = np.dtype([("ql", "u1", (QK_K // 2,)), ("qh", "u1", (QK_K // 4,)),
                 ("scales", "i1", (QK_K // 16,)), ("d", "<f2")])


def unpack_scale_min(packed):
    """get_scale_min_k4 for all 8 sub-blocks: bytes 0-3 hold sc[0:4] (low 6 bits) and the top
    bits of sc[4:8]; bytes 4-7 the same for m; bytes 8-11 the low nibbles of sc[4:8] | m[4:8]."""
    a, b, c = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    sc = np.concatenate([a & 63, (c & 15) | ((a >> 6) << 4)], axis=-1)
    m = np.concatenate([b & 63, (c >> 4) | ((b >> 6) << 4)], axis=-1)
    return sc, m


def pack_scale_min(sc, m):
    a = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    b = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    c = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return np.concatenate([a, b, c], axis=-1).astype(np.uint8)


def sub_block_scales(d, dmin, sc, m):
    """d*sc and dmin*m in float32, shaped (n, 8, 1) to broadcast over each sub-block."""
    return ((d.astype(F32)[:, None] * sc.astype(F32))[..., None],
            (dmin.astype(F32)[:, None] * m.astype(F32))[..., None])


def low_nibbles(qs):
    """qs (n, 128) -> (n, 8, 32): each 32 bytes hold two sub-blocks, the first in low nibbles."""
    return unpack_fields(qs.reshape(-1, 4, 32), 4, 2).reshape(-1, 8, 32)


def pack_low_nibbles(levels):
    return pack_fields((levels & np.uint8(15)).reshape(-1, 4, 2, 32), 4).reshape(-1, 128)


def affine_values(blocks, q):
    """d*sc*q - dmin*m for q of shape (n, 8, 32), in gguf-py's (and ggml's) order."""
    sc, m = unpack_scale_min(blocks["scales"])
    d_sub, dm_sub = sub_block_scales(blocks["d"], blocks["dmin"], sc, m)
    return (d_sub * q.astype(F32) - dm_sub).reshape(-1, QK_K)


def quantize_affine_k(x, nmax, rmin, rdelta, nstep):
    """The part shared by Q4_K and Q5_K: a scale and min search per sub-block, 6-bit scales
    relative to the super-block maxima, then requantization with the stored scales.
    Returns (d, dmin, sc, m, L) with L of shape (n, 8, 32)."""
    sub = x.reshape(-1, 32)
    av_x = np.sqrt(seqsum(sub * sub) / F32(32))
    scales, mins, levels = make_qkx2_quants(sub, av_x[:, None] + np.abs(sub),
                                            nmax, rmin, rdelta, nstep)
    scales, mins, levels = scales.reshape(-1, 8), mins.reshape(-1, 8), levels.reshape(-1, 8, 32)
    max_scale = np.maximum(scales.max(-1), F32(0))
    max_min = np.maximum(mins.max(-1), F32(0))
    inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0))
    inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0))
    # the uint8 cast wraps like C's uint8_t before the clamp to 63
    sc = np.minimum(nearest_int(inv_scale[:, None] * scales).astype(np.uint8), 63)
    m = np.minimum(nearest_int(inv_min[:, None] * mins).astype(np.uint8), 63)
    d, dmin = fp16_round(max_scale / F32(63)), fp16_round(max_min / F32(63))
    d_sub, dm_sub = sub_block_scales(d, dmin, sc, m)
    requant = np.clip(nearest_int((x.reshape(-1, 8, 32) + dm_sub) / d_sub), 0, nmax)
    levels = np.where(d_sub != 0, requant, levels)  # ggml keeps the search's levels where d == 0
    return d, dmin, sc, m, levels.astype(np.uint8)


def _affine_unit_std(qmax):
    """std of sc*q - (qmax/2)*m for independent uniform 6-bit sc, m and q in [0, qmax]:
    the value std for d = 1, dmin = qmax/2 (which centres the values on 0)."""
    s1, s2 = 31.5, 63 * 127 / 6          # E[sc], E[sc**2]
    q1, q2 = qmax / 2, qmax * (2 * qmax + 1) / 6
    return np.sqrt(s2 * q2 - 2 * q1 * q1 * s1 * s1 + q1 * q1 * s2)


def _random_affine(dtype, qmax):
    def random(n, rng, scale):
        blocks = random_bits(dtype, n, rng)
        blocks["d"] = jittered(scale / _affine_unit_std(qmax), n, rng)
        blocks["dmin"] = fp16_round(blocks["d"].astype(F32) * F32(qmax / 2))
        return blocks
    return random


def _q4_k():
    def quantize(x):
        d, dmin, sc, m, levels = quantize_affine_k(x, 15, -1.0, 0.1, 20)
        blocks = np.zeros(len(x), Q4_K)
        blocks["d"], blocks["dmin"], blocks["scales"] = d, dmin, pack_scale_min(sc, m)
        blocks["qs"] = pack_low_nibbles(levels)
        return blocks

    return Format(T.Q4_K, QK_K, Q4_K, lambda b: affine_values(b, low_nibbles(b["qs"])),
                  quantize, _random_affine(Q4_K, 15))


def _q5_k():
    """qh[l] bit j is the fifth bit of value l of sub-block j."""
    def dequantize(blocks):
        high = unpack_fields(blocks["qh"], 1, 8)
        return affine_values(blocks, low_nibbles(blocks["qs"]) | (high << np.uint8(4)))

    def quantize(x):
        d, dmin, sc, m, levels = quantize_affine_k(x, 31, -0.5, 0.1, 15)
        blocks = np.zeros(len(x), Q5_K)
        blocks["d"], blocks["dmin"], blocks["scales"] = d, dmin, pack_scale_min(sc, m)
        blocks["qh"] = pack_fields(levels >> np.uint8(4), 1)
        blocks["qs"] = pack_low_nibbles(levels)
        return blocks

    return Format(T.Q5_K, QK_K, Q5_K, dequantize, quantize, _random_affine(Q5_K, 31))


def _q6_k():
    """In each half of 128 values, ql[l] holds the low nibbles of values l and l+64 (l < 64),
    qh[l] the top two bits of values l, l+32, l+64, l+96 (l < 32)."""
    def dequantize(blocks):
        low = unpack_fields(blocks["ql"].reshape(-1, 2, 64), 4, 2).reshape(-1, 2, 128)
        high = unpack_fields(blocks["qh"].reshape(-1, 2, 32), 2, 4).reshape(-1, 2, 128)
        q = (low | (high << np.uint8(4))).astype(np.int8) - np.int8(32)
        d_sub = (blocks["d"].astype(F32)[:, None] * blocks["scales"].astype(F32))[..., None]
        return (d_sub * q.reshape(-1, 16, 16).astype(F32)).reshape(-1, QK_K)

    def quantize(x):
        scales, levels = make_qx_quants(x.reshape(-1, 16), 32)
        scales, levels = scales.reshape(-1, 16), levels.reshape(-1, 16, 16)
        max_scale = np.take_along_axis(scales, np.abs(scales).argmax(-1)[:, None], -1)[:, 0]
        iscale = F32(-128) / max_scale
        d = fp16_round(F32(1) / iscale)
        sc = np.minimum(nearest_int(iscale[:, None] * scales), 127).astype(np.int8)
        d_sub = (d.astype(F32)[:, None] * sc.astype(F32))[..., None]
        requant = np.clip(nearest_int(x.reshape(-1, 16, 16) / d_sub), -32, 31) + 32
        levels = np.where(d_sub != 0, requant, levels).astype(np.uint8).reshape(-1, 2, 128)
        blocks = np.zeros(len(x), Q6_K)
        low, high = levels & np.uint8(15), levels >> np.uint8(4)
        blocks["ql"] = pack_fields(low.reshape(-1, 2, 2, 64), 4).reshape(-1, 128)
        blocks["qh"] = pack_fields(high.reshape(-1, 2, 4, 32), 2).reshape(-1, 64)
        blocks["scales"], blocks["d"] = sc, d
        blocks[np.abs(max_scale) < GROUP_MAX_EPS] = np.zeros(1, Q6_K)  # as ggml: all-zero block
        return blocks

    def random(n, rng, scale):
        sc_rms = np.sqrt((np.arange(-128, 128) ** 2).mean())
        q_rms = np.sqrt((np.arange(-32, 32) ** 2).mean())
        blocks = random_bits(Q6_K, n, rng)
        blocks["d"] = jittered(scale / (sc_rms * q_rms), n, rng)
        return blocks

    return Format(T.Q6_K, QK_K, Q6_K, dequantize, quantize, random)


FORMATS = (_q4_k(), _q5_k(), _q6_k())
