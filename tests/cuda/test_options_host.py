"""cuda/src/options.cu compiled for the host (tests/cuda/options_host.cpp): the switches of
options.cuh read from the environment, their defaults, and the message a bad value gets, on
any machine (tests/cuda/test_engine.py checks the same messages through an engine, on a GPU)."""
from __future__ import annotations

import ctypes

import pytest

from orcd._cuda import PREFILL_CHUNK

FIELDS = ("decode", "decode_chosen", "persistent_blocks_per_sm", "graphs", "matvec", "overlap",
          "clusters", "joint", "fused_warps", "fused_stream", "hidden_q8", "prefill_graphs",
          "decode_ahead", "fused_format", "split_steps", "wide_tiles", "dense_tiles", "wgmma",
          "prefill_chunk")
SWITCHES = ("ORCD_FUSED", "ORCD_PERSISTENT_BLOCKS", "ORCD_CUDA_GRAPH", "ORCD_MATVEC",
            "ORCD_OVERLAP", "ORCD_CLUSTERS", "ORCD_JOINT", "ORCD_FUSED_WARPS",
            "ORCD_FUSED_STREAM", "ORCD_HIDDEN_Q8", "ORCD_PREFILL_GRAPH", "ORCD_DECODE_AHEAD",
            "ORCD_FUSED_FORMAT", "ORCD_SPLIT_STEPS", "ORCD_WIDE_TILES", "ORCD_DENSE_TILES",
            "ORCD_WGMMA", "ORCD_PREFILL_CHUNK")
DEFAULTS = {"decode": 1, "decode_chosen": 0, "persistent_blocks_per_sm": 0, "graphs": 1,
            "matvec": 0, "overlap": 1, "clusters": 1, "joint": 1, "fused_warps": 8,
            "fused_stream": 1, "hidden_q8": 0, "prefill_graphs": 1, "decode_ahead": 1,
            "fused_format": 1, "split_steps": 1,
            "wide_tiles": 1, "dense_tiles": 1, "wgmma": 1,
            "prefill_chunk": PREFILL_CHUNK}  # DecodePath::fused, MatvecPath::q8_1


@pytest.fixture(scope="module")
def host_options(host_library):
    cdll = host_library("options_host", ["cuda/src/options.cu", "cuda/src/context.cu",
                                         "tests/cuda/options_host.cpp"])
    cdll.orcd_last_error.restype = ctypes.c_char_p
    return cdll


@pytest.fixture
def read(host_options, monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)

    def read(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        out = (ctypes.c_int * len(FIELDS))()
        status = host_options.options_host(out)
        for name in env:
            monkeypatch.delenv(name)
        return status, dict(zip(FIELDS, out)), host_options.orcd_last_error().decode()
    return read


def test_unset_switches_give_the_defaults(read):
    status, options, _ = read()
    assert status == 0 and options == DEFAULTS
    assert read(ORCD_OVERLAP="", ORCD_FUSED_WARPS="")[1] == DEFAULTS  # empty is unset


@pytest.mark.parametrize("name, field", [
    ("ORCD_OVERLAP", "overlap"), ("ORCD_CLUSTERS", "clusters"), ("ORCD_JOINT", "joint"),
    ("ORCD_FUSED_STREAM", "fused_stream"), ("ORCD_HIDDEN_Q8", "hidden_q8"),
    ("ORCD_PREFILL_GRAPH", "prefill_graphs"), ("ORCD_DECODE_AHEAD", "decode_ahead"),
    ("ORCD_FUSED_FORMAT", "fused_format"), ("ORCD_SPLIT_STEPS", "split_steps"),
    ("ORCD_WIDE_TILES", "wide_tiles"), ("ORCD_DENSE_TILES", "dense_tiles"),
    ("ORCD_WGMMA", "wgmma")])
def test_an_on_off_switch_takes_0_and_1_and_names_its_default(read, name, field):
    assert read(**{name: "0"})[1] == DEFAULTS | {field: 0}
    assert read(**{name: "1"})[1] == DEFAULTS | {field: 1}
    status, _, message = read(**{name: "yes"})
    assert status != 0
    assert message.startswith(f"{name}=yes: use 0 (") and ") or 1 (" in message
    default_side = message.split(") or 1 (")[DEFAULTS[field]]
    assert default_side.endswith(", the default") or default_side.endswith(", the default)")
    assert message.count("the default") == 1


@pytest.mark.parametrize("value, warps", [("2", 2), ("4", 4), ("8", 8), ("spread", 0)])
def test_fused_warps(read, value, warps):
    assert read(ORCD_FUSED_WARPS=value)[1] == DEFAULTS | {"fused_warps": warps}


@pytest.mark.parametrize("env, names", [
    ({"ORCD_FUSED": "2"}, "ORCD_FUSED=2: use persistent"),
    ({"ORCD_PERSISTENT_BLOCKS": "9"}, "ORCD_PERSISTENT_BLOCKS=9: use 1 to 4"),
    ({"ORCD_MATVEC": "int4"}, "ORCD_MATVEC=int4: use f32"),
    ({"ORCD_FUSED_WARPS": "16"}, "ORCD_FUSED_WARPS=16: use 2, 4 or 8"),
    ({"ORCD_PREFILL_CHUNK": "100"}, "ORCD_PREFILL_CHUNK=100: use a multiple of 64 from 64 to"),
    ({"ORCD_PREFILL_CHUNK": "0"}, "ORCD_PREFILL_CHUNK=0: use a multiple of 64"),
    ({"ORCD_PREFILL_CHUNK": "16384"}, "ORCD_PREFILL_CHUNK=16384: use a multiple of 64"),
    ({"ORCD_PREFILL_CHUNK": "2k"}, "ORCD_PREFILL_CHUNK=2k: use a multiple of 64"),
])
def test_a_bad_value_is_refused_naming_the_switch(read, env, names):
    status, _, message = read(**env)
    assert status != 0 and message.startswith(names)


@pytest.mark.parametrize("rows", [64, 1024, 2048, 8192])
def test_the_prefill_chunk_takes_multiples_of_64(read, rows):
    assert read(ORCD_PREFILL_CHUNK=str(rows))[1] == DEFAULTS | {"prefill_chunk": rows}


def test_the_decode_path_is_chosen_only_when_asked(read):
    assert read(ORCD_FUSED="persistent")[1] == DEFAULTS | {"decode": 2, "decode_chosen": 1}
    assert read(ORCD_FUSED="0")[1] == DEFAULTS | {"decode": 0, "decode_chosen": 1}
    assert read(ORCD_CUDA_GRAPH="0")[1] == DEFAULTS | {"graphs": 0}
