"""Checks of the tensor table against the file: types, shapes, sizes, alignment, bounds,
overlap. The Cython parser (_reader.pyx) has already checked the byte structure; what is
left needs the ggml type table and the whole table at once, and runs once per tensor."""
from __future__ import annotations

from math import prod
from typing import NamedTuple

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from orcd.errors import ModelLoadError

INT64_MAX = 2**63 - 1  # ggml stores ne and nbytes as int64


class RawTensor(NamedTuple):
    """One tensor-table entry as read, with where its fields sit, for precise messages."""
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int      # relative to the data section
    dims_at: int
    type_at: int
    offset_at: int


class TensorSpan(NamedTuple):
    name: str
    ggml_type: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int      # absolute file offset
    nbytes: int


def invalid(path, at: int, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: invalid GGUF at byte offset {at}: {problem} "
                          "(the file is damaged or was not written by a GGUF converter)")


def ggml_type_of(path, t: RawTensor) -> GGMLQuantizationType:
    try:
        ggml_type = GGMLQuantizationType(t.type_id)
    except ValueError:
        ggml_type = None
    if ggml_type not in GGML_QUANT_SIZES:
        raise invalid(path, t.type_at, f"tensor {t.name!r} has unknown ggml type {t.type_id}")
    return ggml_type


def nbytes_of(path, t: RawTensor, ggml_type: GGMLQuantizationType) -> int:
    for i, ne in enumerate(t.shape):
        if ne == 0:
            raise invalid(path, t.dims_at + 8 * i, f"tensor {t.name!r} dimension {i} is 0")
    n = prod(t.shape)
    if n > INT64_MAX:
        raise invalid(path, t.dims_at, f"tensor {t.name!r} shape {t.shape} overflows: "
                                       f"{n} elements > 2^63-1")
    block_size, type_size = GGML_QUANT_SIZES[ggml_type]
    if t.shape[0] % block_size:
        raise invalid(path, t.dims_at, f"tensor {t.name!r} row length {t.shape[0]} is not a "
                                       f"multiple of the {ggml_type.name} block size {block_size}")
    return n // block_size * type_size


def tensor_spans(path, raw: list[RawTensor], alignment: int, data_offset: int,
                 file_size: int) -> list[TensorSpan]:
    """Every tensor's type and byte range, each aligned, inside the file, none overlapping."""
    spans = []
    for t in raw:
        ggml_type = ggml_type_of(path, t)
        nbytes = nbytes_of(path, t, ggml_type)
        if t.offset % alignment:
            raise invalid(path, t.offset_at, f"tensor {t.name!r} offset {t.offset} is not a "
                                             f"multiple of general.alignment {alignment}")
        start = data_offset + t.offset
        if start + nbytes > file_size:
            raise invalid(path, t.offset_at, f"tensor {t.name!r} data [{start}, {start + nbytes}) "
                                             f"runs past the end of the file ({file_size} bytes)")
        spans.append(TensorSpan(t.name, ggml_type, t.shape, start, nbytes))
    check_disjoint(path, spans, {t.name: t.offset_at for t in raw})
    return spans


def check_disjoint(path, spans: list[TensorSpan], offset_at: dict[str, int]) -> None:
    by_start = sorted(spans, key=lambda s: s.offset)
    for prev, cur in zip(by_start, by_start[1:]):
        if cur.offset < prev.offset + prev.nbytes:
            raise invalid(path, offset_at[cur.name],
                          f"tensor {cur.name!r} data at {cur.offset} overlaps tensor "
                          f"{prev.name!r} [{prev.offset}, {prev.offset + prev.nbytes})")
