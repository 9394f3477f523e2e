"""Quantizers: bytes equal to the reference quantizers, and the error each format allows."""
import gguf
import numpy as np
import pytest
from gguf.quants import quantize as gguf_quantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from orcd import quant

T = gguf.GGMLQuantizationType
GGUF_PY_QUANTIZES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4"]
K_QUANTS = ["Q4_K", "Q5_K", "Q6_K"]


def hard_rows(rng, row=512):
    """Gaussian rows, plus the degenerate blocks the references special-case: all zero,
    constant (positive and negative), a single spike, tiny values, a wide dynamic range."""
    rows = [rng.standard_normal(row), np.zeros(row), np.full(row, 0.25), np.full(row, -3.0),
            np.eye(1, row, 7)[0] * -5, rng.standard_normal(row) * 1e-6,
            rng.standard_normal(row) * np.exp2(rng.integers(-20, 10, row)), rng.uniform(0, 1, row)]
    return np.stack(rows + list(rng.standard_normal((8, row)) * 0.02)).astype(np.float32)


@pytest.mark.parametrize("name", GGUF_PY_QUANTIZES)
def test_bytes_equal_gguf_py(name):
    x = hard_rows(np.random.default_rng(5))
    ours = quant.quantize(x, name)
    theirs = np.ascontiguousarray(gguf_quantize(x, T[name])).view(np.uint8)
    np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


@pytest.mark.parametrize("name", K_QUANTS)
def test_k_quant_bytes_equal_llama_cpp(name):
    """libgguf runs ggml's own quantize_row_q*_K_ref; ours follows it operation for operation."""
    libgguf = pytest.importorskip("libgguf", reason="needs libgguf, ggml's reference quantizers")
    x = hard_rows(np.random.default_rng(6), row=1024)
    np.testing.assert_array_equal(quant.quantize(x, name), libgguf.quantize_rows(x, T[name]))


# Any float32 whose fp16 scales stay finite (|x| < 6e4): zeros, repeats, subnormals, ties.
FLOAT_ROWS = arrays(np.float32, (2, 256), elements=st.floats(-6e4, 6e4, width=32))


@settings(max_examples=100, deadline=None)
@given(FLOAT_ROWS, st.sampled_from(GGUF_PY_QUANTIZES))
def test_bytes_equal_gguf_py_on_any_floats(x, name):
    ours = quant.quantize(x, name)
    with np.errstate(all="ignore"):  # gguf-py's MXFP4 overflows on huge trial errors, harmlessly
        theirs = np.ascontiguousarray(gguf_quantize(x, T[name])).view(np.uint8)
    np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


@settings(max_examples=100, deadline=None)
@given(FLOAT_ROWS, st.sampled_from(K_QUANTS))
def test_k_quant_bytes_equal_llama_cpp_on_any_floats(x, name):
    libgguf = pytest.importorskip("libgguf", reason="needs libgguf, ggml's reference quantizers")
    np.testing.assert_array_equal(quant.quantize(x, name), libgguf.quantize_rows(x, T[name]))


def roundtrip(x, name):
    return quant.dequantize(quant.quantize(x, name), name, x.shape)


def test_f32_roundtrip_is_exact():
    x = hard_rows(np.random.default_rng(7))
    np.testing.assert_array_equal(roundtrip(x, "F32"), x)


@pytest.mark.parametrize("name,bits", [("F16", 11), ("BF16", 8)])
def test_half_precision_rounds_to_nearest(name, bits):
    x = np.random.default_rng(8).standard_normal((4, 256)).astype(np.float32)
    # round to nearest: at most half an ulp, 2**-bits relative (x stays in the normal range)
    assert np.all(np.abs(roundtrip(x, name) - x) <= np.abs(x) * 2.0**-bits)


# Per-element error bound in units of the block's largest |x|, from each format's rounding:
FP16_SCALE = 2.0**-11  # relative rounding of a stored fp16 scale (or min)
BLOCK_BOUNDS = {
    "Q8_0": 1 / 254 + FP16_SCALE,     # half a step of amax/127; |q| <= 127 times d's rounding
    "Q4_0": 1 / 8 + FP16_SCALE,       # one step of amax/8: x/d in (7.5, 8] clips from 8 to 7
    "Q5_0": 1 / 16 + FP16_SCALE,      # the same with 16 levels per sign
    "Q4_1": 1 / 15 + 3 * FP16_SCALE,  # half a step of (max-min)/15 <= 2*amax/15; d, m rounding
    "Q5_1": 1 / 31 + 3 * FP16_SCALE,  # the same with 31 steps
    "MXFP4": 1 / 4,  # grid unit u with amax in [4u, 8u): gaps of 2u between 4u and 6u, top 6u
}


@pytest.mark.parametrize("name", BLOCK_BOUNDS)
def test_block_error_within_the_format_resolution(name):
    x = hard_rows(np.random.default_rng(9))
    block = quant.BLOCKS[T[name]][0]
    amax = np.abs(x.reshape(-1, block)).max(-1, keepdims=True)
    err = np.abs(roundtrip(x, name) - x).reshape(-1, block)
    # below this amax, d < 2**-14 is an fp16 subnormal and loses relative precision (as in ggml)
    normal = amax[:, 0] >= 127 * 2.0**-14
    assert normal.mean() > 0.5
    bound = amax[normal] * BLOCK_BOUNDS[name] * (1 + 1e-6)  # 1e-6: float32 rounding of x/d
    assert np.all(err[normal] <= bound)


# RMS error on this N(0, 1) sample (262,144 values), relative to its std of 1: ours and
# llama.cpp's (libgguf 0.2.2) are identical, Q4_K 0.0716, Q5_K 0.0362, Q6_K 0.0178. The bounds
# sit 2-3% above; plain min/max scales without ggml's search give 0.0787 and 0.0383 and fail.
RMS_BOUNDS = {"Q4_K": 0.0735, "Q5_K": 0.0372, "Q6_K": 0.0183}


@pytest.mark.parametrize("name", K_QUANTS)
def test_k_quant_rms_error(name):
    x = np.random.default_rng(10).standard_normal((64, 4096)).astype(np.float32)
    assert np.sqrt(np.mean((roundtrip(x, name) - x) ** 2)) <= RMS_BOUNDS[name]


@pytest.mark.parametrize("name", [*K_QUANTS, *BLOCK_BOUNDS])
def test_zero_blocks_stay_exactly_zero(name):
    x = hard_rows(np.random.default_rng(11), row=512)
    np.testing.assert_array_equal(roundtrip(x, name)[1], 0)
