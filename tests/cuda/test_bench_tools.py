"""The GPU box's stand-alone CUDA benchmarks (bench/*.cu: a grid barrier's cost, a decode
matvec's floor): each compiles warning-free as its header says, says so and fails without a GPU,
and on a GPU runs through, its kernels' results checked where it checks them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orcd import _cuda

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(p.name for p in (ROOT / "bench").glob("*.cu"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("needs nvcc to compile bench/*.cu")
    out = tmp_path_factory.mktemp("bench_tools")

    def build(name: str) -> Path:
        exe = out / Path(name).stem
        if not exe.exists():
            subprocess.run([nvcc, "-O3", "-std=c++17", "-arch=sm_90a", "-Xcompiler", "-Wall,-Wextra",
                            "--Werror", "all-warnings", "-o", str(exe), str(ROOT / "bench" / name)],
                           check=True, capture_output=True, text=True)
        return exe
    return build


def test_the_tools_are_found():
    assert {"grid_barrier.cu", "matvec_latency.cu"} <= set(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_a_tool_compiles_warning_free_and_without_a_gpu_says_so(built, name):
    exe = built(name)
    if _cuda.device_count() > 0:
        pytest.skip("a GPU is here: test_a_tool_runs_on_the_gpu runs it")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "GPU" in proc.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("name", TOOLS)
def test_a_tool_runs_on_the_gpu(built, name):
    proc = subprocess.run([str(built(name))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "WRONG" not in proc.stdout, proc.stdout
