"""cuda/src/quant.cuh's decoders, compiled for the host (tests/cuda/quant_host.cpp), against
orcd.quant bit for bit, and its integer dot products (the matvec's Q8_1 path) against the
dequantized weights times the quantized activations: the block layouts and bit twiddling are
checked on any machine."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from orcd import quant
from orcd.quant.activations import dequantize_activations_q8_1, quantize_activations_q8_1



@pytest.fixture(scope="module")
def host_quant(host_library):
    return host_library("quant_host", ["tests/cuda/quant_host.cpp"], "-fPIC,-ffp-contract=off")


@pytest.mark.parametrize("ggml_type", list(quant.BLOCKS), ids=lambda t: t.name)
def test_dequant16_matches_orcd_quant_bit_for_bit(host_quant, ggml_type):
    rows, cols = 7, 768  # 3 K-quant blocks: every sub-block and both nibble halves
    raw = quant.random_blocks(ggml_type, (rows, cols), np.random.default_rng(3))
    out = np.empty((rows, cols), np.float32)
    for r in range(rows):
        status = host_quant.dequant_row(int(ggml_type), raw[r].ctypes.data_as(ctypes.c_void_p),
                                        cols, out[r].ctypes.data_as(ctypes.c_void_p))
        assert status == 0
    ref = quant.dequantize(raw, ggml_type, (rows, cols))
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))


INTEGER_FORMATS = [t for t in quant.BLOCKS if t.name not in ("F32", "F16", "BF16")]


@pytest.mark.parametrize("ggml_type", INTEGER_FORMATS, ids=lambda t: t.name)
def test_integer_dot_matches_dequantized_product(host_quant, ggml_type):
    rows, cols = 5, 768  # 3 K-quant blocks: every sub-block, quarter and nibble half
    rng = np.random.default_rng(4)
    raw = quant.random_blocks(ggml_type, (rows, cols), rng)
    x = rng.standard_normal(cols).astype(np.float32)
    x[64:96] = 0.0  # a block with d = 0
    q, d, sums = quantize_activations_q8_1(x)
    xr = dequantize_activations_q8_1(q, d).reshape(-1, 32)
    w = quant.dequantize(raw, ggml_type, (rows, cols)).astype(np.float64).reshape(rows, -1, 32)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    for r in range(rows):
        out = np.empty(cols // 32, np.float32)
        assert host_quant.dot_units(int(ggml_type), ptr(raw[r]), cols, ptr(q), ptr(d), ptr(sums),
                                    ptr(out)) == 0
        ref = (w[r] * xr).sum(axis=1)
        # The integer dot is exact; the scale products and the dequantizer's own d * q (+ m)
        # round a few times by 2^-24 each, relative to sum |w x| plus the cancelled offset or
        # min (random blocks keep it under 2 max|w|).
        mag = (np.abs(w[r]) * np.abs(xr)).sum(1) + 4 * np.abs(w[r]).max(1) * np.abs(xr).sum(1)
        assert np.all(np.abs(out - ref) <= 2.0 ** -20 * mag)


def test_activation_quantizer_matches_orcd_quant_bit_for_bit(host_quant):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(32 * 64) * np.exp(rng.uniform(-30, 30, 32 * 64))).astype(np.float32)
    x[:32] = 0.0  # d = 0
    x[32:64] = np.linspace(-1e-40, 1e-40, 32)  # subnormal d: 1 / d overflows
    x[33] = 0.0  # 0 * inf
    x[64:96] = np.arange(32) - 15.5  # with max|x| = 127, d = 1: ties, which go to even
    x[64] = 127.0
    q, d, sums = np.empty(x.size, np.int8), np.empty(x.size // 32, np.float32), np.empty(
        x.size // 32, np.int32)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    host_quant.quantize_q8_1(ptr(x), x.size, ptr(q), ptr(d), ptr(sums))
    ref_q, ref_d, ref_sums = quantize_activations_q8_1(x)
    assert np.array_equal(q, ref_q)
    assert np.array_equal(d.view(np.uint32), ref_d.view(np.uint32))
    assert np.array_equal(sums, ref_sums)
