"""GGUFFile: a validated GGUF file mapped read-only, its tensors as zero-copy uint8 views."""
from __future__ import annotations

import io
import mmap
import os

import numpy as np
from gguf import GGMLQuantizationType

from orcd.errors import ModelLoadError
from orcd.gguf._reader import parse
from orcd.gguf.validate import TensorSpan, invalid, tensor_spans


class _Mapping:
    """The file's mmap and one uint8 array over all of it. Tensor views are slices of that
    array, so each view keeps the mapping alive: close() unmaps at once when no view is
    left, otherwise when the last view is freed; a view never outlives its memory."""

    def __init__(self, path: str):
        try:
            with io.open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise invalid(path, 0, "truncated: the file is empty")
                self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise ModelLoadError(f"{path}: cannot open the GGUF file: {e.strerror or e}") from e
        self.array = np.frombuffer(self.mm, dtype=np.uint8)

    def view(self, offset: int, nbytes: int) -> np.ndarray:
        if self.array is None:
            raise ValueError("the GGUF file is closed: take tensor views before close()")
        return self.array[offset:offset + nbytes]

    def close(self) -> None:
        self.array = None
        mm, self.mm = self.mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # views remain; dropping our reference lets the last one unmap it


class TensorInfo:
    __slots__ = ("name", "ggml_type", "shape", "offset", "nbytes", "_mapping")

    def __init__(self, span: TensorSpan, mapping: _Mapping):
        self.name: str = span.name
        self.ggml_type: GGMLQuantizationType = span.ggml_type
        self.shape: tuple[int, ...] = span.shape  # GGUF order: shape[0] = ne0, the row
        self.offset: int = span.offset            # absolute file offset
        self.nbytes: int = span.nbytes
        self._mapping = mapping

    @property
    def data(self) -> np.ndarray:
        """The tensor's bytes: a read-only uint8 view over the mapping, no copy."""
        return self._mapping.view(self.offset, self.nbytes)

    def __repr__(self) -> str:
        return (f"TensorInfo({self.name!r}, {self.ggml_type.name}, shape={self.shape}, "
                f"offset={self.offset}, nbytes={self.nbytes})")


class GGUFFile:
    def __init__(self, path: str, mapping: _Mapping, version: int, alignment: int,
                 data_offset: int, metadata: dict, spans: list[TensorSpan]):
        self.path = path
        self.version = version
        self.alignment = alignment
        self.data_offset = data_offset
        self.metadata = metadata
        self.tensors = {s.name: TensorInfo(s, mapping) for s in spans}
        self._mapping = mapping

    def close(self) -> None:
        self._mapping.close()

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GGUFFile({self.path!r}, version={self.version}, "
                f"{len(self.metadata)} keys, {len(self.tensors)} tensors)")


def open(path) -> GGUFFile:
    """Maps and validates a GGUF file; ModelLoadError naming the byte offset on any problem."""
    path = os.fspath(path)
    mapping = _Mapping(path)
    try:
        version, metadata, raw, alignment, data_offset = parse(mapping.array, path)
        spans = tensor_spans(path, raw, alignment, data_offset, mapping.array.size)
    except BaseException:
        mapping.close()
        raise
    return GGUFFile(path, mapping, version, alignment, data_offset, metadata, spans)
