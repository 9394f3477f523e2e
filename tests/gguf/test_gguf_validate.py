"""Every way a GGUF file can be malformed gives ModelLoadError naming the byte offset."""
from __future__ import annotations

import re
import struct
import tracemalloc

import pytest
from ggufcraft import ARRAY, BOOL, F32, HEADER, Q8_0, STRING, UINT32, Craft, Tensor, kv, string

import orcd.gguf
from orcd.errors import ModelLoadError

HUGE = 2**60


def load_error(tmp_path, content: Craft | bytes) -> str:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content.bytes() if isinstance(content, Craft) else content)
    with pytest.raises(ModelLoadError) as e:
        orcd.gguf.open(path)
    assert e.value.code == "MODEL_LOAD_FAILED"
    return str(e.value)


def expect(tmp_path, content, at: int, problem: str) -> None:
    msg = load_error(tmp_path, content)
    assert f"at byte offset {at}:" in msg, msg
    assert re.search(problem, msg), msg


def test_the_base_craft_is_valid(tmp_path):
    with orcd.gguf.open(Craft().write(tmp_path)) as f:
        assert [t.nbytes for t in f.tensors.values()] == [32, 34]


def test_bad_magic(tmp_path):
    expect(tmp_path, b"GGML" + Craft().bytes()[4:], 0, r"bad magic b'GGML'")


@pytest.mark.parametrize("version", [0, 1, 4, 0xFFFFFFFF])
def test_unsupported_version(tmp_path, version):
    expect(tmp_path, Craft(version=version), 4, rf"unsupported version {version}:")


def test_big_endian_version_is_named(tmp_path):
    expect(tmp_path, Craft(version=0x03000000), 4, r"big-endian")


def test_empty_file(tmp_path):
    expect(tmp_path, b"", 0, r"truncated: the file is empty")


def test_every_truncation_fails(tmp_path):
    full = Craft().bytes()
    for n in range(1, len(full)):
        msg = load_error(tmp_path, full[:n])
        assert re.search(r"truncated|runs past the end|cannot fit", msg), (n, msg)


def test_truncated_string_names_its_start(tmp_path):
    c = Craft(tensors=[], data=b"")  # no tensors, so the counts fit the cut file
    cut = c.kv_at(0) + 8 + 5  # inside the key "general.architecture"
    expect(tmp_path, c.bytes()[:cut], c.kv_at(0), r"metadata key length 20 runs past the end")


@pytest.mark.parametrize("count_field, at", [("tensor_count", 8), ("kv_count", 16)])
def test_huge_count_fails_without_allocating(tmp_path, count_field, at):
    tracemalloc.start()
    expect(tmp_path, Craft(**{count_field: HUGE}), at, rf"{HUGE} cannot fit")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, peak  # a few KB of bookkeeping, never memory for 2^60 entries


def test_huge_string_length_fails_without_allocating(tmp_path):
    c = Craft(kvs=[struct.pack("<Q", HUGE) + b"general.architecture"])
    tracemalloc.start()
    expect(tmp_path, c, HEADER, rf"metadata key length {HUGE} runs past the end")
    assert tracemalloc.get_traced_memory()[1] < 1 << 20  # nothing sized by the length
    tracemalloc.stop()


@pytest.mark.parametrize("etype, name", [(UINT32, "uint32"), (STRING, "string"),
                                         (ARRAY, "array")])
def test_huge_array_count_fails_without_allocating(tmp_path, etype, name):
    c = Craft(kvs=[kv("x", ARRAY, struct.pack("<IQ", etype, HUGE))])
    tracemalloc.start()
    expect(tmp_path, c, HEADER + 8 + 1 + 4 + 4, rf"{name} array count {HUGE} cannot fit")
    assert tracemalloc.get_traced_memory()[1] < 1 << 20  # nothing sized by the count
    tracemalloc.stop()


def test_unknown_value_type(tmp_path):
    expect(tmp_path, Craft(kvs=[kv("x", 13, b"\0")]), HEADER + 9, r"unknown value type of 'x' 13")


def test_unknown_array_element_type(tmp_path):
    c = Craft(kvs=[kv("x", ARRAY, struct.pack("<IQ", 99, 1))])
    expect(tmp_path, c, HEADER + 13, r"unknown array element type 99")


def test_bool_other_than_0_or_1(tmp_path):
    expect(tmp_path, Craft(kvs=[kv("x", BOOL, b"\x02")]), HEADER + 13, r"bool value is 2")


def test_bool_array_element_other_than_0_or_1(tmp_path):
    c = Craft(kvs=[kv("x", ARRAY, struct.pack("<IQ", BOOL, 3) + b"\x01\x00\x07")])
    expect(tmp_path, c, HEADER + 13 + 12 + 2, r"bool array element 2 is 7")


def test_arrays_nested_too_deep(tmp_path):
    nested = struct.pack("<IQ", ARRAY, 1) * 40 + struct.pack("<IQ", UINT32, 0)
    expect(tmp_path, Craft(kvs=[kv("x", ARRAY, nested)]), HEADER + 13 + 12 * 16,
           r"nested deeper than 16")


def test_duplicate_metadata_key(tmp_path):
    k = kv("general.architecture", STRING, string("llama"))
    expect(tmp_path, Craft(kvs=[k, k]), HEADER + len(k), r"duplicate metadata key")


@pytest.mark.parametrize("vtype, payload, problem", [
    (UINT32, struct.pack("<I", 48), r"general.alignment 48 is not a power of two"),
    (UINT32, struct.pack("<I", 0), r"general.alignment 0 is not a power of two"),
    (STRING, string("32"), r"general.alignment is string, must be uint32"),
])
def test_bad_alignment(tmp_path, vtype, payload, problem):
    expect(tmp_path, Craft(kvs=[kv("general.alignment", vtype, payload)]), HEADER, problem)


@pytest.mark.parametrize("type_id", [4, 31, 9999])  # 4: the removed Q4_2; 31: never assigned
def test_unknown_ggml_type(tmp_path, type_id):
    c = Craft(tensors=[Tensor("a", (4, 2), type_id, 0)])
    expect(tmp_path, c, c.type_at(0), rf"tensor 'a' has unknown ggml type {type_id}")


@pytest.mark.parametrize("shape", [(), (1, 1, 1, 1, 1)])
def test_dimension_count_outside_1_to_4(tmp_path, shape):
    c = Craft(tensors=[Tensor("a", shape, F32, 0)])
    expect(tmp_path, c, c.dims_at(0) - 4, rf"has {len(shape)} dimensions \(1..4\)")


def test_zero_dimension(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 0), F32, 0)])
    expect(tmp_path, c, c.dims_at(0) + 8, r"tensor 'a' dimension 1 is 0")


def test_overflowing_dimensions(tmp_path):
    c = Craft(tensors=[Tensor("a", (2**32, 2**32), F32, 0)])
    expect(tmp_path, c, c.dims_at(0), r"overflows: 18446744073709551616 elements")


def test_row_not_a_multiple_of_the_block_size(tmp_path):
    c = Craft(tensors=[Tensor("b", (33,), Q8_0, 0)])
    expect(tmp_path, c, c.dims_at(0), r"row length 33 is not a multiple of the Q8_0 block size 32")


def test_data_out_of_bounds(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 2), F32, 0), Tensor("b", (32,), Q8_0, 64)])
    expect(tmp_path, c, c.offset_at(1), r"tensor 'b' data \[\d+, \d+\) runs past the end")


def test_huge_offset_out_of_bounds(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 2), F32, 2**64 - 32)])
    expect(tmp_path, c, c.offset_at(0), r"runs past the end of the file")


def test_overlapping_tensors(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 2), F32, 32), Tensor("b", (32,), Q8_0, 0)])
    c.data = bytes(96)
    expect(tmp_path, c, c.offset_at(0), r"tensor 'a' data at \d+ overlaps tensor 'b'")


def test_misaligned_offset(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 2), F32, 0), Tensor("b", (32,), Q8_0, 40)])
    c.data = bytes(74)
    expect(tmp_path, c, c.offset_at(1), r"offset 40 is not a multiple of general.alignment 32")


def test_offset_misaligned_for_a_custom_alignment(tmp_path):
    c = Craft(kvs=[kv("general.alignment", UINT32, struct.pack("<I", 64))], alignment=64)
    expect(tmp_path, c, c.offset_at(1), r"offset 32 is not a multiple of general.alignment 64")


def test_duplicate_tensor_name(tmp_path):
    c = Craft(tensors=[Tensor("a", (4, 2), F32, 0), Tensor("a", (8,), F32, 32)])
    expect(tmp_path, c, c.tensor_at(1), r"duplicate tensor name 'a'")


def test_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot open the GGUF file"):
        orcd.gguf.open(tmp_path / "absent.gguf")
