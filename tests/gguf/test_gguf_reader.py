"""orcd.gguf.open against files written by gguf-py's GGUFWriter, hand-built v2 files, and the
real SmolLM2 file read by gguf-py's GGUFReader."""
from __future__ import annotations

import gc

import gguf
import numpy as np
import pytest
from ggufcraft import STRING, Craft, kv, string
from tinygguf import (NESTED, NUMERIC_ARRAYS, SCALARS, STRINGS, array_values, tiny_tensors,
                      write_tiny)

import orcd.gguf


def test_every_scalar_type_round_trips(tiny_gguf):
    with orcd.gguf.open(tiny_gguf) as f:
        for key, (val, _) in SCALARS.items():
            assert f.metadata[key] == val and type(f.metadata[key]) is type(val), key
        assert f.metadata["general.architecture"] == "llama"


def test_numeric_arrays_keep_their_stored_dtype(tiny_gguf):
    with orcd.gguf.open(tiny_gguf) as f:
        for vtype, dtype in NUMERIC_ARRAYS.items():
            got = f.metadata[f"a.{vtype.name.lower()}"]
            assert got.dtype == np.dtype(dtype) and got.flags.owndata, vtype  # not over the mmap
            assert got.tolist() == array_values(vtype), vtype


def test_string_and_nested_arrays(tiny_gguf):
    with orcd.gguf.open(tiny_gguf) as f:
        assert f.metadata["a.string"] == STRINGS
        nested = f.metadata["a.nested"]
        assert isinstance(nested, list) and [a.tolist() for a in nested] == NESTED
        assert f.metadata["a.nested_strings"] == [["x", "y"], ["z"]]


def test_tensors_in_file_order_with_their_bytes(tiny_gguf):
    expected = tiny_tensors()
    with orcd.gguf.open(tiny_gguf) as f:
        assert list(f.tensors) == list(expected)
        for name, (arr, ggml_type, shape) in expected.items():
            t = f.tensors[name]
            assert t.ggml_type == ggml_type
            assert t.shape == tuple(reversed(shape))  # GGUF order: ne0 first
            assert t.nbytes == arr.nbytes and t.data.tobytes() == arr.tobytes()
            assert (t.offset - f.data_offset) % f.alignment == 0


def test_custom_alignment(tmp_path):
    write_tiny(tmp_path / "a64.gguf", alignment=64)
    with orcd.gguf.open(tmp_path / "a64.gguf") as f:
        assert f.alignment == 64 and f.data_offset % 64 == 0
        assert all(t.offset % 64 == 0 for t in f.tensors.values())


def test_version_2_reads_like_version_3(tiny_gguf, tmp_path):
    # v2 and v3 differ only in v3 allowing big-endian files: a little-endian v3 file with
    # its version field set to 2 is a valid v2 file.
    v2 = bytearray(tiny_gguf.read_bytes())
    v2[4:8] = (2).to_bytes(4, "little")
    (tmp_path / "v2.gguf").write_bytes(v2)
    with orcd.gguf.open(tiny_gguf) as f3, orcd.gguf.open(tmp_path / "v2.gguf") as f2:
        assert (f3.version, f2.version) == (3, 2)
        assert f2.metadata.keys() == f3.metadata.keys()
        assert [(t.name, t.shape, t.offset) for t in f2.tensors.values()] == \
               [(t.name, t.shape, t.offset) for t in f3.tensors.values()]


def test_hand_built_version_2(tmp_path):
    with orcd.gguf.open(Craft(version=2).write(tmp_path)) as f:
        assert f.version == 2 and f.alignment == 32
        assert f.tensors["b"].data.tobytes() == bytes(range(32, 66))


def test_invalid_utf8_is_kept_with_surrogateescape(tmp_path):
    c = Craft(kvs=[kv("s", STRING, string(b"ok\xff"))])
    with orcd.gguf.open(c.write(tmp_path)) as f:
        assert f.metadata["s"] == "ok\udcff"
        assert f.metadata["s"].encode("utf-8", "surrogateescape") == b"ok\xff"


def test_tensor_data_is_a_read_only_zero_copy_view(tiny_gguf):
    with orcd.gguf.open(tiny_gguf) as f:
        t = f.tensors["token_embd.weight"]
        a, b = t.data, t.data
        assert a.dtype == np.uint8 and a.shape == (t.nbytes,)
        assert not a.flags.owndata and not a.flags.writeable
        assert np.shares_memory(a, b)


def mapped(path) -> bool:
    with open("/proc/self/maps") as m:
        return any(line.rstrip().endswith(str(path)) for line in m)


def test_close_unmaps_when_no_view_is_left(tiny_gguf):
    f = orcd.gguf.open(tiny_gguf)
    assert mapped(tiny_gguf)
    f.close()
    assert not mapped(tiny_gguf)


def test_views_taken_before_close_stay_valid_until_freed(tiny_gguf):
    expected = tiny_tensors()["token_embd.weight"][0].tobytes()
    with orcd.gguf.open(tiny_gguf) as f:
        view = f.tensors["token_embd.weight"].data
    with pytest.raises(ValueError, match="closed"):
        f.tensors["token_embd.weight"].data
    del f
    gc.collect()
    assert mapped(tiny_gguf) and view.tobytes() == expected
    del view
    gc.collect()
    assert not mapped(tiny_gguf)


@pytest.fixture(scope="module")
def smollm2_pair(smollm2_path):
    reader = gguf.GGUFReader(smollm2_path)  # several seconds: built once for the module
    with orcd.gguf.open(smollm2_path) as f:
        yield f, reader


def test_smollm2_metadata_matches_gguf_py(smollm2_pair):
    f, reader = smollm2_pair
    fields = {k: v for k, v in reader.fields.items() if not k.startswith("GGUF.")}
    assert list(f.metadata) == list(fields)
    for key, field in fields.items():
        ours, theirs = f.metadata[key], field.contents()
        if isinstance(ours, np.ndarray):
            assert ours.dtype == field.parts[field.data[0]].dtype, key
            ours = ours.tolist()
        assert ours == theirs, key
    assert f.version == reader.fields["GGUF.version"].contents()


def test_smollm2_tensors_match_gguf_py(smollm2_pair):
    f, reader = smollm2_pair
    assert f.alignment == reader.alignment and f.data_offset == reader.data_offset
    assert list(f.tensors) == [t.name for t in reader.tensors]
    for theirs in reader.tensors:
        ours = f.tensors[theirs.name]
        assert ours.ggml_type == theirs.tensor_type, theirs.name
        assert ours.shape == tuple(int(n) for n in theirs.shape), theirs.name
        assert (ours.offset, ours.nbytes) == (theirs.data_offset, theirs.n_bytes), theirs.name
        assert np.array_equal(ours.data, theirs.data.reshape(-1).view(np.uint8)), theirs.name
