"""cuda/src/quant.cuh's decoders, compiled for the host (tests/cuda/quant_host.cpp), against
orcd.quant bit for bit: the block layouts and bit twiddling are checked on any machine."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from orcd import quant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host_quant(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("needs nvcc (the build's compiler driver) to compile quant.cuh for the host")
    lib = tmp_path_factory.mktemp("quant_host") / "quant_host.so"
    subprocess.run([nvcc, "-std=c++17", "-O1", "-shared", "-Xcompiler", "-fPIC,-ffp-contract=off",
                    f"-I{ROOT / 'cuda/src'}", f"-I{ROOT / 'cuda/include'}",
                    str(ROOT / "tests/cuda/quant_host.cpp"), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


@pytest.mark.parametrize("ggml_type", list(quant.BLOCKS), ids=lambda t: t.name)
def test_dequant16_matches_orcd_quant_bit_for_bit(host_quant, ggml_type):
    rows, cols = 7, 768  # 3 K-quant blocks: every sub-block and both nibble halves
    raw = quant.random_blocks(ggml_type, (rows, cols), np.random.default_rng(3))
    out = np.empty((rows, cols), np.float32)
    for r in range(rows):
        status = host_quant.dequant_row(int(ggml_type), raw[r].ctypes.data_as(ctypes.c_void_p),
                                        cols, out[r].ctypes.data_as(ctypes.c_void_p))
        assert status == 0
    ref = quant.dequantize(raw, ggml_type, (rows, cols))
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))
