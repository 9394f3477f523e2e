"""MXFP4 (OCP microscaling): blocks of 32 e2m1 values sharing one E8M0 exponent byte.
Values are KVALUES[q] * 2**(e - 128): the table holds e2m1 values doubled, hence the half
scale (ggml_e8m0_to_fp32_half). Quantizer as quantize_row_mxfp4_ref (ggml-quants.c)."""
from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T

from .block import F32, Format, pack_fields, random_bits, unpack_fields

QK = 32
MXFP4 = np.dtype([("e", "u1"), ("qs", "u1", (QK // 2,))])
KVALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.int8)


def e8m0_to_fp32_half(e):
    """2**(e - 128) built bit by bit; e < 2 gives float32 subnormals."""
    e = e.astype(np.uint32)
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - np.uint32(1)) << np.uint32(23))
    return bits.view(F32)


def dequantize(blocks):
    q = unpack_fields(blocks["qs"], 4, 2).reshape(-1, QK)
    return e8m0_to_fp32_half(blocks["e"])[:, None] * KVALUES[q].astype(F32)


def best_index(x, d):
    """Index of the table value nearest to x/d; the first one wins ties (best_index_mxfp4)."""
    best = np.zeros(x.shape, np.uint8)
    best_err = np.abs(F32(KVALUES[0]) * d - x)
    for i in range(1, len(KVALUES)):
        err = np.abs(F32(KVALUES[i]) * d - x)
        closer = err < best_err
        best[closer], best_err[closer] = i, err[closer]
    return best


def quantize(x):
    amax = np.abs(x).max(-1)
    # floorf(log2f(amax)) as ggml (and gguf-py) compute it, float32 rounding of log2 included
    e = np.where(amax > 0, np.floor(np.log2(amax)) - 2 + 127, 0).astype(np.uint8)
    blocks = np.zeros(len(x), MXFP4)
    blocks["e"] = e
    q = best_index(x, e8m0_to_fp32_half(e)[:, None])
    blocks["qs"] = pack_fields(q.reshape(-1, 2, QK // 2), 4)
    return blocks


def random(n, rng, scale):
    """Exponents centred on the one that gives std `scale`, spread by one octave either way."""
    jitter_rms = np.sqrt((0.25 + 1 + 4) / 3)
    unit_std = np.sqrt((KVALUES.astype(float) ** 2).mean()) * jitter_rms
    centre = int(np.clip(np.rint(128 + np.log2(scale / unit_std)), 3, 253))
    blocks = random_bits(MXFP4, n, rng)
    blocks["e"] = centre + rng.integers(-1, 2, n, dtype=np.int16)
    return blocks


FORMATS = (Format(T.MXFP4, QK, MXFP4, dequantize, quantize, random),)
