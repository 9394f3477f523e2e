"""What tests/cuda's host tests share: cuda/src compiled for the host into a library loaded
with ctypes, so that code without device intrinsics (or with host stand-ins for them) is
checked on any machine."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host_library(tmp_path_factory):
    """build(name, sources, host_flags, nvcc_flags) -> ctypes.CDLL: the sources (relative to the
    repository) compiled by nvcc for the host with cuda/src and cuda/include on the include path
    (nvcc_flags: e.g. the architecture that device code in the sources needs)."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("needs nvcc (the build's compiler driver) to compile cuda/src for the host")

    def build(name: str, sources: list[str], host_flags: str = "-fPIC",
              nvcc_flags: tuple[str, ...] = ()) -> ctypes.CDLL:
        lib = tmp_path_factory.mktemp(name) / f"{name}.so"
        subprocess.run([nvcc, "-std=c++17", "-O1", "-shared", "-Xcompiler", host_flags, *nvcc_flags,
                        f"-I{ROOT / 'cuda/src'}", f"-I{ROOT / 'cuda/include'}",
                        *(str(ROOT / s) for s in sources), "-o", str(lib)], check=True)
        return ctypes.CDLL(str(lib))
    return build
