"""NumPy (de)quantizers for every GGUF weight format orcd serves.

Arrays follow NumPy order: the last dimension is the contiguous row (GGUF's ne0). Quantized
data is uint8 whose last dimension holds the bytes of one row, as gguf-py lays it out.
"""
from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType

from . import floats, kquants, legacy, mxfp4
from .block import Format

FORMATS: dict[GGMLQuantizationType, Format] = {
    f.ggml_type: f for f in (*floats.FORMATS, *legacy.FORMATS, *kquants.FORMATS, *mxfp4.FORMATS)
}

QUANTIZE_CHUNK = 1 << 16  # values per quantizer call: the K-quant searches stay in cache

# {ggml_type: (values per block, bytes per block)}
BLOCKS: dict[GGMLQuantizationType, tuple[int, int]] = {
    t: (f.block_size, f.dtype.itemsize) for t, f in FORMATS.items()
}


def format_of(ggml_type) -> Format:
    """The Format of a GGMLQuantizationType or its name ("Q4_K"); ValueError if not served."""
    try:
        if not isinstance(ggml_type, GGMLQuantizationType):
            ggml_type = GGMLQuantizationType[ggml_type]
        return FORMATS[ggml_type]
    except (KeyError, TypeError):
        name = getattr(ggml_type, "name", repr(ggml_type))
        served = ", ".join(t.name for t in FORMATS)
        raise ValueError(f"unsupported GGML type {name}; orcd serves {served}") from None


def _blocks_per_row(fmt: Format, shape) -> int:
    row = shape[-1] if len(shape) else 0
    if row <= 0 or row % fmt.block_size:
        raise ValueError(f"{fmt.ggml_type.name}: row length {row} (shape {tuple(shape)}) is not "
                         f"a positive multiple of the block size {fmt.block_size}")
    return row // fmt.block_size


def row_bytes(ggml_type, row: int) -> int:
    """Bytes of one row of `row` values."""
    fmt = format_of(ggml_type)
    return _blocks_per_row(fmt, (row,)) * fmt.dtype.itemsize


def dequantize(raw: np.ndarray, ggml_type, shape) -> np.ndarray:
    """Raw bytes of a tensor -> float32 array of `shape` (NumPy order, last dim = row)."""
    fmt = format_of(ggml_type)
    shape = tuple(int(s) for s in shape)
    n_blocks = _blocks_per_row(fmt, shape) * int(np.prod(shape[:-1], dtype=np.int64))
    data = np.ascontiguousarray(raw).reshape(-1).view(np.uint8)
    if data.size != n_blocks * fmt.dtype.itemsize:
        raise ValueError(f"{fmt.ggml_type.name}: {data.size} bytes given, shape {shape} "
                         f"needs {n_blocks * fmt.dtype.itemsize}")
    return fmt.dequantize(data.view(fmt.dtype)).reshape(shape)


def quantize(x: np.ndarray, ggml_type) -> np.ndarray:
    """float array (last dim = row) -> uint8 of shape (*x.shape[:-1], bytes per row)."""
    fmt = format_of(ggml_type)
    per_row = _blocks_per_row(fmt, x.shape)
    values = np.ascontiguousarray(x, np.float32).reshape(-1, fmt.block_size)
    blocks = np.empty(len(values), fmt.dtype)
    step = max(1, QUANTIZE_CHUNK // fmt.block_size)
    # Degenerate blocks (all zero, constant, subnormal spans) divide by zero or overflow just as
    # ggml's C does; the references mask those lanes, and so do the quantizers.
    with np.errstate(all="ignore"):
        for i in range(0, len(values), step):
            blocks[i:i + step] = fmt.quantize(values[i:i + step])
    return blocks.view(np.uint8).reshape(*x.shape[:-1], per_row * fmt.dtype.itemsize)


def random_blocks(ggml_type, shape, rng: np.random.Generator, scale: float = 0.02) -> np.ndarray:
    """Valid random data of `shape` (NumPy order): random bytes with finite scales chosen so the
    values have a std of roughly `scale`. Fast enough for multi-GB synthetic files."""
    fmt = format_of(ggml_type)
    shape = tuple(int(s) for s in shape)
    per_row = _blocks_per_row(fmt, shape)
    n_blocks = per_row * int(np.prod(shape[:-1], dtype=np.int64))
    blocks = fmt.random(n_blocks, rng, scale)
    return blocks.view(np.uint8).reshape(*shape[:-1], per_row * fmt.dtype.itemsize)
