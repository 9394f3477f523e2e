# cython: language_level=3
"""Parses a GGUF header, metadata and tensor table straight from the file's mapping.

Layout (GGUF v2 and v3 are identical in little-endian files): magic "GGUF", version u32,
tensor_count u64, kv_count u64, kv_count x (key: string, type: u32, value), tensor_count x
(name: string, n_dims: u32, ne[n_dims]: u64, type: u32, offset: u64), padding to
general.alignment, tensor data. A string is a u64 byte length and the bytes.

Every read is bounds-checked against the mapping, and every count or length is checked
against the bytes left before anything is allocated for it, so a hostile file fails with
ModelLoadError naming the byte offset, never with a crash or a giant allocation.
Values are read with memcpy, which assumes a little-endian host (x86-64, aarch64).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int8_t, int16_t, int32_t, int64_t
from libc.string cimport memcmp, memcpy
from cpython.unicode cimport PyUnicode_DecodeUTF8

import numpy as np
cimport numpy as cnp

from orcd.gguf.validate import invalid, RawTensor

cnp.import_array()

cdef enum:
    MAX_DIMS = 4  # GGML_MAX_DIMS
    # Nested arrays are legal but never deeper than 2 in practice; the bound keeps a hostile
    # file of nested array headers from recursing until the C stack overflows.
    MAX_ARRAY_DEPTH = 16
    DEFAULT_ALIGNMENT = 32

cdef enum ValueType:
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64
    N_VALUE_TYPES

# Smallest encodings, used to reject a count the remaining bytes cannot hold.
cdef enum:
    MIN_KV_BYTES = 13       # key length 8 + empty key + type 4 + a 1-byte value
    MIN_TENSOR_BYTES = 32   # name length 8 + n_dims 4 + one dim 8 + type 4 + offset 8
    STRING_HEADER = 8
    ARRAY_HEADER = 12       # element type 4 + count 8

cdef Py_ssize_t ITEM_SIZE[N_VALUE_TYPES]
ITEM_SIZE[:] = [1, 1, 2, 2, 4, 4, 4, 1, STRING_HEADER, ARRAY_HEADER, 8, 8, 8]
NUMPY_DTYPE = [t and np.dtype(t) for t in ("<u1", "<i1", "<u2", "<i2", "<u4", "<i4", "<f4", "?",
                                           None, None, "<u8", "<i8", "<f8")]
TYPE_NAME = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
             "string", "array", "uint64", "int64", "float64"]


cdef class Parser:
    cdef const uint8_t *base
    cdef Py_ssize_t size
    cdef Py_ssize_t pos
    cdef object path

    cdef fail(self, Py_ssize_t at, str problem):
        raise invalid(self.path, at, problem)

    cdef int need(self, Py_ssize_t n, str what) except -1:
        if n > self.size - self.pos:
            self.fail(self.pos, f"truncated: {what} needs {n} bytes but the file ends "
                                f"{self.size - self.pos} bytes later (file size {self.size})")
        return 0

    cdef uint32_t u32(self, str what) except? 0xffffffff:
        cdef uint32_t v
        self.need(4, what)
        memcpy(&v, self.base + self.pos, 4)
        self.pos += 4
        return v

    cdef uint64_t u64(self, str what) except? 0xffffffffffffffff:
        cdef uint64_t v
        self.need(8, what)
        memcpy(&v, self.base + self.pos, 8)
        self.pos += 8
        return v

    cdef Py_ssize_t count(self, str what, Py_ssize_t min_item_bytes) except -1:
        """A u64 count whose items, at min_item_bytes each, must fit in the rest of the file."""
        cdef Py_ssize_t at = self.pos
        cdef uint64_t n = self.u64(what)
        cdef uint64_t room = <uint64_t>(self.size - self.pos) // <uint64_t>min_item_bytes
        if n > room:
            self.fail(at, f"{what} {n} cannot fit in the {self.size - self.pos} bytes left "
                          f"(at least {min_item_bytes} bytes each)")
        return <Py_ssize_t>n

    cdef str string(self, str what):
        cdef Py_ssize_t at = self.pos
        cdef uint64_t n = self.u64(what)
        if n > <uint64_t>(self.size - self.pos):
            self.fail(at, f"{what} length {n} runs past the end of the file "
                          f"({self.size - self.pos} bytes left)")
        cdef str s = PyUnicode_DecodeUTF8(<const char *>(self.base + self.pos), n,
                                          "surrogateescape")
        self.pos += n
        return s

    cdef uint32_t value_type(self, str what) except? 0xffffffff:
        cdef Py_ssize_t at = self.pos
        cdef uint32_t t = self.u32(what)
        if t >= N_VALUE_TYPES:
            self.fail(at, f"unknown {what} {t} (valid: 0..{N_VALUE_TYPES - 1})")
        return t

    cdef object scalar(self, uint32_t t):
        cdef Py_ssize_t at = self.pos
        cdef const uint8_t *p
        cdef float f32
        cdef double f64
        if t == STRING:
            return self.string("string value")
        self.need(ITEM_SIZE[t], f"{TYPE_NAME[t]} value")
        p = self.base + self.pos
        self.pos += ITEM_SIZE[t]
        if t == UINT8:
            return p[0]
        if t == INT8:
            return (<const int8_t *>p)[0]
        if t == BOOL:
            if p[0] > 1:
                self.fail(at, f"bool value is {p[0]}, not 0 or 1")
            return p[0] == 1
        if t == FLOAT32:
            memcpy(&f32, p, 4)
            return f32
        if t == FLOAT64:
            memcpy(&f64, p, 8)
            return f64
        return self.integer(t, p)

    cdef object integer(self, uint32_t t, const uint8_t *p):
        cdef uint16_t u16
        cdef uint32_t u32
        cdef uint64_t u64
        if t == UINT16 or t == INT16:
            memcpy(&u16, p, 2)
            return u16 if t == UINT16 else <int16_t>u16
        if t == UINT32 or t == INT32:
            memcpy(&u32, p, 4)
            return u32 if t == UINT32 else <int32_t>u32
        memcpy(&u64, p, 8)
        return u64 if t == UINT64 else <int64_t>u64

    cdef object array(self, int depth):
        """Numbers -> 1-D numpy array (a copy, independent of the mapping); strings -> list[str];
        arrays -> list."""
        cdef Py_ssize_t at = self.pos
        cdef uint32_t t = self.value_type("array element type")
        if depth > MAX_ARRAY_DEPTH:
            self.fail(at, f"arrays nested deeper than {MAX_ARRAY_DEPTH}")
        cdef Py_ssize_t n = self.count(f"{TYPE_NAME[t]} array count", ITEM_SIZE[t])
        cdef Py_ssize_t i
        if t == STRING:
            return [self.string("array string") for i in range(n)]
        if t == ARRAY:
            return [self.array(depth + 1) for i in range(n)]
        cdef cnp.ndarray out = np.empty(n, dtype=NUMPY_DTYPE[t])
        memcpy(cnp.PyArray_DATA(out), self.base + self.pos, n * ITEM_SIZE[t])
        if t == BOOL:
            for i in range(n):
                if self.base[self.pos + i] > 1:
                    self.fail(self.pos + i, f"bool array element {i} is "
                                            f"{self.base[self.pos + i]}, not 0 or 1")
        self.pos += n * ITEM_SIZE[t]
        return out

    cdef dict metadata(self, Py_ssize_t kv_count):
        cdef dict kv = {}
        cdef Py_ssize_t i, at
        cdef uint32_t t
        for i in range(kv_count):
            at = self.pos
            key = self.string("metadata key")
            if key in kv:
                self.fail(at, f"duplicate metadata key {key!r}")
            t = self.value_type(f"value type of {key!r}")
            kv[key] = self.array(1) if t == ARRAY else self.scalar(t)
            if key == "general.alignment":
                check_alignment(self, t, kv[key], at)
        return kv

    cdef list tensor_table(self, Py_ssize_t tensor_count):
        cdef list tensors = []
        cdef set names = set()
        cdef Py_ssize_t i, at, dims_at, type_at, offset_at
        cdef uint32_t n_dims
        for i in range(tensor_count):
            at = self.pos
            name = self.string(f"name of tensor {i}")
            if name in names:
                self.fail(at, f"duplicate tensor name {name!r}")
            names.add(name)
            dims_at = self.pos
            n_dims = self.u32(f"n_dims of tensor {name!r}")
            if n_dims == 0 or n_dims > MAX_DIMS:
                self.fail(dims_at, f"tensor {name!r} has {n_dims} dimensions (1..{MAX_DIMS})")
            dims_at = self.pos
            shape = tuple([self.u64(f"dimension of tensor {name!r}") for _ in range(n_dims)])
            type_at = self.pos
            type_id = self.u32(f"type of tensor {name!r}")
            offset_at = self.pos
            offset = self.u64(f"offset of tensor {name!r}")
            tensors.append(RawTensor(name, shape, type_id, offset, dims_at, type_at, offset_at))
        return tensors


cdef check_alignment(Parser p, uint32_t t, value, Py_ssize_t at):
    if t != UINT32:
        p.fail(at, f"general.alignment is {TYPE_NAME[t]}, must be uint32")
    if value == 0 or value & (value - 1):
        p.fail(at, f"general.alignment {value} is not a power of two")


def parse(const uint8_t[::1] buf, path):
    """-> (version, metadata, list[RawTensor], alignment, data_offset)."""
    cdef Parser p = Parser()
    p.base = &buf[0]
    p.size = buf.shape[0]
    p.pos = 0
    p.path = path
    p.need(4, "magic")
    if memcmp(p.base, b"GGUF", 4) != 0:
        p.fail(0, f"bad magic {(<const char *>p.base)[:4]!r}, expected b'GGUF': "
                  "not a GGUF file")
    p.pos = 4
    version = p.u32("version")
    if version not in (2, 3):
        hint = " (a big-endian file?)" if version in (0x02000000, 0x03000000) else ""
        p.fail(4, f"unsupported version {version}{hint}: orcd reads GGUF versions 2 and 3")
    tensor_count = p.count("tensor count", MIN_TENSOR_BYTES)
    kv_count = p.count("metadata key/value count", MIN_KV_BYTES)
    metadata = p.metadata(kv_count)
    tensors = p.tensor_table(tensor_count)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    data_offset = (p.pos + alignment - 1) // alignment * alignment
    return version, metadata, tensors, alignment, data_offset
