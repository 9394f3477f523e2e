"""Mutated and truncated real files: orcd.gguf.open gives a valid file or ModelLoadError,
never another exception, a crash or a hang."""
from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orcd.gguf
from orcd.errors import ModelLoadError

FUZZ = settings(max_examples=300, deadline=None, database=None)
# Values that stress counts, lengths, types, dims and offsets when written over a field.
EDGE_U64 = [0, 1, 2, 3, 4, 5, 0xFF, 2**31, 2**32 - 1, 2**32, 2**60, 2**63 - 1, 2**63, 2**64 - 1]


def overwrite(limit: int):
    """(position, bytes) pairs: a random byte or an edge value as u32/u64 at a position."""
    edge = st.sampled_from(EDGE_U64)
    value = st.one_of(st.binary(min_size=1, max_size=1),
                      edge.map(lambda v: struct.pack("<I", v & 0xFFFFFFFF)),
                      edge.map(lambda v: struct.pack("<Q", v)))
    return st.tuples(limit, value)


def apply(buf: bytearray, edits) -> bytearray:
    for pos, value in edits:
        buf[pos:pos + len(value)] = value[:max(0, len(buf) - pos)]
    return buf


def open_or_reject(path) -> None:
    try:
        f = orcd.gguf.open(path)
    except ModelLoadError:
        return
    with f, open(path, "rb") as raw:
        for t in f.tensors.values():  # a view must hold exactly the file's bytes at its offset
            ends = t.data[[0, -1]].tobytes()
            assert ends == os.pread(raw.fileno(), 1, t.offset) + \
                os.pread(raw.fileno(), 1, t.offset + t.nbytes - 1)


@pytest.fixture(scope="module")
def tiny_bytes(tiny_gguf):
    return tiny_gguf.read_bytes()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.data())
def test_mutated_tiny_file(tiny_bytes, work_dir, data):
    n = len(tiny_bytes)
    edits = data.draw(st.lists(overwrite(st.integers(0, n - 1)), min_size=1, max_size=8))
    buf = apply(bytearray(tiny_bytes), edits)
    if data.draw(st.booleans()):
        start = data.draw(st.integers(0, len(buf)))
        del buf[start:start + data.draw(st.integers(1, 64))]
    buf = buf[:data.draw(st.integers(0, len(buf)))]
    path = work_dir / "tiny_mutated.gguf"
    path.write_bytes(bytes(buf))
    open_or_reject(path)


@pytest.fixture(scope="module")
def smollm2_copy(smollm2_path, work_dir):
    """The real file copied once; each example edits its header in place and restores it."""
    path = work_dir / "smollm2.gguf"
    shutil.copyfile(smollm2_path, path)
    with orcd.gguf.open(path) as f:
        header_end = f.data_offset
    return path, header_end, path.read_bytes()[:header_end]


@FUZZ
@given(data=st.data())
def test_mutated_smollm2_header(smollm2_copy, work_dir, data):
    path, header_end, header = smollm2_copy
    # Half the edits land on the fixed header, early keys and the tensor table (the last
    # ~20 KB before the data), where a flipped byte changes structure; the rest anywhere.
    where = st.one_of(st.integers(0, 4095), st.integers(header_end - 20000, header_end - 1),
                      st.integers(0, header_end - 1))
    edits = data.draw(st.lists(overwrite(where), min_size=1, max_size=8))
    cut = data.draw(st.none() | st.integers(0, header_end + 4096))
    if cut is not None:
        prefix = work_dir / "smollm2_prefix.gguf"
        with open(path, "rb") as src:
            prefix.write_bytes(bytes(apply(bytearray(src.read(cut)), edits)))
        open_or_reject(prefix)
        return
    fd = os.open(path, os.O_RDWR)
    try:
        for pos, value in edits:
            os.pwrite(fd, value[:header_end - pos], pos)
        open_or_reject(path)
    finally:
        os.pwrite(fd, header, 0)
        os.close(fd)


def test_smollm2_copy_is_restored(smollm2_copy, smollm2_path):
    path, header_end, _ = smollm2_copy
    with orcd.gguf.open(path) as f, orcd.gguf.open(smollm2_path) as g:
        assert f.metadata.keys() == g.metadata.keys() and f.data_offset == g.data_offset
        assert np.array_equal(f.tensors["token_embd.weight"].data,
                              g.tensors["token_embd.weight"].data)
