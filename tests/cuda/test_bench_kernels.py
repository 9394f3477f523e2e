"""Kernel benchmarks (run with --benchmark-enable on the GPU box): the CUDA-event figures of
`orcd bench kernels` land in each benchmark's extra_info."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from orcd.bench import kernels

DECODE = [("Q4_K", "phi3-mini", "ffn_down"), ("Q6_K", "phi3-mini", "ffn_down"),
          ("Q8_0", "qwen2.5-0.5b", "output"), ("Q4_0", "phi3-mini", "attn_qkv"),
          ("MXFP4", "gpt-oss-20b", "ffn_gate_up_exps (one expert)")]
SHAPES = {(model, tensor): (rows, cols) for model, tensor, rows, cols in kernels.SHAPES}


@pytest.fixture(scope="module")
def copy_bandwidth():
    from orcd import _cuda
    return _cuda.copy_bandwidth()


def _figure(benchmark, copy_bandwidth, op, name, model, tensor, n):
    rows, cols = SHAPES[model, tensor]
    row = benchmark.pedantic(kernels.measure, args=(op, name, model, tensor, rows, cols, n,
                                                    copy_bandwidth, 200), rounds=3)
    benchmark.extra_info.update(asdict(row))
    assert row.seconds > 0 and row.bandwidth == pytest.approx(row.weight_bytes / row.seconds)


@pytest.mark.gpu
@pytest.mark.parametrize("name,model,tensor", DECODE, ids=[d[0] for d in DECODE])
def test_bench_matvec(benchmark, copy_bandwidth, name, model, tensor):
    _figure(benchmark, copy_bandwidth, "matvec", name, model, tensor, 0)


@pytest.mark.gpu
@pytest.mark.parametrize("n", kernels.MATMUL_N)
def test_bench_matmul_q4_k(benchmark, copy_bandwidth, n):
    _figure(benchmark, copy_bandwidth, "matmul", "Q4_K", "phi3-mini", "attn_qkv", n)


@pytest.mark.gpu
@pytest.mark.parametrize("model,tensor", [a[:2] for a in kernels.ATTENTION], ids=str)
def test_bench_attention_prefill(benchmark, copy_bandwidth, model, tensor):
    row = benchmark.pedantic(kernels.measure, args=("attention", "F16", model, tensor, 0, 0, 0,
                                                    copy_bandwidth, 200), rounds=3)
    benchmark.extra_info.update(asdict(row))
    assert row.seconds > 0


def test_cases_hold_only_whole_blocks():
    cases = list(kernels.cases(["Q4_K", "Q8_0"], {"matvec", "matmul"}))
    assert all(cols % 256 == 0 for op, name, *_, cols, n in cases if name == "Q4_K")
    assert ("matvec", "Q8_0", "qwen2.5-0.5b", "attn_q", 896, 896, 0) in cases
    assert {n for op, *_, n in cases if op == "matmul"} == set(kernels.MATMUL_N)
    attention = list(kernels.cases(["Q4_K"], {"attention"}))
    assert [(op, model, n) for op, _, model, _, _, _, n in attention] == [
        ("attention", model, n) for model, _, _, _, _, n, _ in kernels.ATTENTION]


def test_orcd_bench_kernels_parses_its_options():
    from orcd.cli import build_parser
    args = build_parser().parse_args(["bench", "kernels", "--formats", "Q4_K,MXFP4", "--json"])
    assert args.formats == "Q4_K,MXFP4" and args.json and args.iters == 200
