"""A tiny GGUF file written by gguf-py's GGUFWriter: every metadata value type, nested
arrays, F32/F16/Q8_0 tensors; the values it holds, for the tests to compare."""
from __future__ import annotations

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

SCALARS = {
    "t.uint8": (255, V.UINT8), "t.int8": (-128, V.INT8),
    "t.uint16": (65535, V.UINT16), "t.int16": (-32768, V.INT16),
    "t.uint32": (2**32 - 1, V.UINT32), "t.int32": (-2**31, V.INT32),
    "t.uint64": (2**64 - 1, V.UINT64), "t.int64": (-2**63, V.INT64),
    "t.float32": (0.25, V.FLOAT32), "t.float64": (1e-300, V.FLOAT64),
    "t.true": (True, V.BOOL), "t.false": (False, V.BOOL),
    "t.string": ("héllo\n", V.STRING), "t.empty": ("", V.STRING),
}
NUMERIC_ARRAYS = {  # value type -> the dtype the reader must return
    V.UINT8: "<u1", V.INT8: "<i1", V.UINT16: "<u2", V.INT16: "<i2", V.UINT32: "<u4",
    V.INT32: "<i4", V.UINT64: "<u8", V.INT64: "<i8", V.FLOAT32: "<f4", V.FLOAT64: "<f8",
    V.BOOL: "?",
}
STRINGS = ["a", "", "Ġthe", "日本語", "x" * 300]
NESTED = [[1, 2, 3], [4], [5, 6]]


def array_values(vtype) -> list:
    if vtype == V.BOOL:
        return [True, False, True]
    info = np.finfo if vtype in (V.FLOAT32, V.FLOAT64) else np.iinfo
    lim = info(np.dtype(NUMERIC_ARRAYS[vtype]))
    return [lim.min, 0, lim.max]


def tiny_tensors() -> dict:
    """name -> (array as written, its ggml type, its element shape in NumPy order)."""
    rng = np.random.default_rng(0)
    q8 = rng.integers(0, 256, size=(2, 34), dtype=np.uint8)  # 2 rows of one Q8_0 block
    return {
        "token_embd.weight": (rng.standard_normal((3, 8)).astype(np.float32), T.F32, (3, 8)),
        "blk.0.attn_q.weight": (q8, T.Q8_0, (2, 32)),
        "output_norm.weight": (rng.standard_normal(8).astype(np.float16), T.F16, (8,)),
    }


def write_tiny(path, alignment: int | None = None) -> None:
    w = gguf.GGUFWriter(path, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, (val, vtype) in SCALARS.items():
        w.add_key_value(key, val, vtype)
    for vtype in NUMERIC_ARRAYS:
        w.add_key_value(f"a.{vtype.name.lower()}", array_values(vtype), V.ARRAY, sub_type=vtype)
    w.add_array("a.string", STRINGS)
    w.add_array("a.nested", NESTED)
    w.add_array("a.nested_strings", [["x", "y"], ["z"]])
    for name, (arr, ggml_type, _) in tiny_tensors().items():
        raw_dtype = ggml_type if arr.dtype == np.uint8 else None  # quantized: shape from bytes
        w.add_tensor(name, arr, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
