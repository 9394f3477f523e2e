"""BLOCKS and the API's handling of format names, shapes and errors."""
import gguf
import numpy as np
import pytest

from orcd import quant
from orcd.quant.block import pack_fields, unpack_fields

T = gguf.GGMLQuantizationType
SERVED = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
          "Q4_K", "Q5_K", "Q6_K", "MXFP4")  # SPEC §6


def test_blocks_cover_exactly_the_served_formats():
    assert sorted(t.name for t in quant.BLOCKS) == sorted(SERVED)


@pytest.mark.parametrize("name", SERVED)
def test_block_sizes_agree_with_gguf_py(name):
    assert quant.BLOCKS[T[name]] == gguf.GGML_QUANT_SIZES[T[name]]


@pytest.mark.parametrize("name", SERVED)
def test_ggml_type_accepted_as_enum_or_name(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 256), np.float32)
    by_name, by_enum = quant.quantize(x, name), quant.quantize(x, T[name])
    np.testing.assert_array_equal(by_name, by_enum)
    np.testing.assert_array_equal(quant.dequantize(by_name, name, x.shape),
                                  quant.dequantize(by_enum, T[name], x.shape))


@pytest.mark.parametrize("shape", [(256,), (3, 256), (2, 3, 512)])
def test_shapes_follow_numpy_order_with_the_row_last(shape):
    x = np.random.default_rng(1).standard_normal(shape, np.float32)
    raw = quant.quantize(x, "Q4_K")
    assert raw.dtype == np.uint8 and raw.shape == (*shape[:-1], shape[-1] // 256 * 144)
    assert quant.dequantize(raw, "Q4_K", shape).shape == shape
    assert quant.random_blocks("Q4_K", shape, np.random.default_rng(0)).shape == raw.shape


@pytest.mark.parametrize("bad", ["Q3_K", "IQ4_XS", "q4_k", "NOPE", 12345, None])
def test_unserved_type_is_a_value_error_listing_what_is_served(bad):
    with pytest.raises(ValueError, match="unsupported GGML type.*Q4_K"):
        quant.quantize(np.zeros((1, 256), np.float32), bad)
    with pytest.raises(ValueError, match="unsupported GGML type.*Q4_K"):
        quant.dequantize(np.zeros(144, np.uint8), bad, (256,))


@pytest.mark.parametrize("name,row", [("Q4_K", 100), ("Q8_0", 48), ("MXFP4", 16), ("Q6_K", 896)])
def test_row_not_a_multiple_of_the_block_is_a_value_error_naming_the_format(name, row):
    block = quant.BLOCKS[T[name]][0]
    message = rf"{name}: row length {row} .* block size {block}"
    with pytest.raises(ValueError, match=message):
        quant.quantize(np.zeros((2, row), np.float32), name)
    with pytest.raises(ValueError, match=message):
        quant.dequantize(np.zeros(1024, np.uint8), name, (2, row))
    with pytest.raises(ValueError, match=message):
        quant.random_blocks(name, (2, row), np.random.default_rng(0))


def test_byte_count_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match=r"Q4_0: 18 bytes given, shape \(2, 32\) needs 36"):
        quant.dequantize(np.zeros(18, np.uint8), "Q4_0", (2, 32))


def test_pack_fields_inverts_unpack_fields():
    rng = np.random.default_rng(2)
    for bits, k in ((1, 8), (2, 4), (4, 2)):
        v = rng.integers(0, 1 << bits, (5, k, 32), dtype=np.uint8)
        np.testing.assert_array_equal(unpack_fields(pack_fields(v, bits), bits, k), v)
