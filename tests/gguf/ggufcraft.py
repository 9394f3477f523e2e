"""Hand-built GGUF bytes, for files GGUFWriter will not write (v2, broken ones).

A Craft is a valid two-tensor file whose fields can be overridden one at a time; its
`*_at` methods give the byte offset where each field starts, which the error must name.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = 24  # magic 4 + version 4 + tensor_count 8 + kv_count 8
UINT32, BOOL, STRING, ARRAY = 4, 7, 8, 9
F32, Q8_0 = 0, 8


def string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return string(key) + struct.pack("<I", vtype) + payload


def tensor_info(name: str, shape: tuple[int, ...], type_id: int, offset: int) -> bytes:
    return (string(name) + struct.pack("<I", len(shape))
            + b"".join(struct.pack("<Q", ne) for ne in shape)
            + struct.pack("<IQ", type_id, offset))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int


def default_tensors() -> list[Tensor]:
    # "a": F32 4x2 = 32 bytes at 0; "b": one Q8_0 block (32 values, 34 bytes) at 32.
    return [Tensor("a", (4, 2), F32, 0), Tensor("b", (32,), Q8_0, 32)]


@dataclass
class Craft:
    version: int = 3
    kvs: list[bytes] = field(default_factory=lambda: [kv("general.architecture", STRING,
                                                         string("llama"))])
    tensors: list[Tensor] = field(default_factory=default_tensors)
    alignment: int = 32
    data: bytes = bytes(range(66))
    tensor_count: int | None = None
    kv_count: int | None = None

    def header(self) -> bytes:
        n_t = len(self.tensors) if self.tensor_count is None else self.tensor_count
        n_kv = len(self.kvs) if self.kv_count is None else self.kv_count
        return b"GGUF" + struct.pack("<IQQ", self.version, n_t, n_kv)

    def table(self) -> bytes:
        return b"".join(tensor_info(t.name, t.shape, t.type_id, t.offset) for t in self.tensors)

    def bytes(self) -> bytes:
        head = self.header() + b"".join(self.kvs) + self.table()
        pad = -len(head) % self.alignment
        return head + b"\0" * pad + self.data

    def kv_at(self, i: int) -> int:
        return HEADER + sum(len(k) for k in self.kvs[:i])

    def tensor_at(self, i: int) -> int:
        return self.kv_at(len(self.kvs)) + sum(
            len(tensor_info(t.name, t.shape, t.type_id, t.offset)) for t in self.tensors[:i])

    def dims_at(self, i: int) -> int:
        return self.tensor_at(i) + 8 + len(self.tensors[i].name.encode()) + 4

    def type_at(self, i: int) -> int:
        return self.dims_at(i) + 8 * len(self.tensors[i].shape)

    def offset_at(self, i: int) -> int:
        return self.type_at(i) + 4

    def write(self, tmp_path, name: str = "crafted.gguf"):
        path = tmp_path / name
        path.write_bytes(self.bytes())
        return path
