"""Dequantization is bit-exact with gguf-py's, on random blocks and on a real model file."""
import gguf
import numpy as np
import pytest
from gguf.quants import dequantize as gguf_dequantize

from orcd import quant

T = gguf.GGMLQuantizationType
SERVED = [t.name for t in quant.BLOCKS]
BLOCKED = [t.name for t, (block, _) in quant.BLOCKS.items() if block > 1]


def assert_same_bits(ours, theirs):
    assert ours.dtype == np.float32
    theirs = np.ascontiguousarray(theirs, np.float32)
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("name", SERVED)
def test_random_blocks_dequantize_like_gguf_py(name):
    shape = (6, 1024)
    raw = quant.random_blocks(name, shape, np.random.default_rng(3))
    theirs = gguf_dequantize(raw, T[name]).reshape(shape)
    assert_same_bits(quant.dequantize(raw, name, shape), theirs)


@pytest.mark.parametrize("name", BLOCKED)
def test_arbitrary_bytes_dequantize_like_gguf_py(name):
    """Every bit pattern, scale fields included (inf and NaN scales too): the unpacking is
    checked on all inputs, not only on the sensible ones random_blocks makes."""
    shape = (4, 2048)
    raw = np.random.default_rng(4).integers(0, 256, (4, quant.row_bytes(name, 2048)), np.uint8)
    with np.errstate(all="ignore"):
        ours, theirs = quant.dequantize(raw, name, shape), gguf_dequantize(raw, T[name])
    assert_same_bits(ours, theirs.reshape(shape))


def test_every_tensor_of_the_bundled_model_dequantizes_like_gguf_py(smollm2_path):
    reader = gguf.GGUFReader(smollm2_path)
    types = set()
    for tensor in reader.tensors:
        shape = tuple(int(n) for n in reversed(tensor.shape))  # GGUF order -> NumPy order
        types.add(tensor.tensor_type.name)
        ours = quant.dequantize(tensor.data, tensor.tensor_type, shape)
        assert_same_bits(ours, gguf_dequantize(tensor.data, tensor.tensor_type).reshape(shape))
    assert types == {"F32", "Q4_1", "Q8_0"}  # the file's mix (SPEC §6): all three were checked
