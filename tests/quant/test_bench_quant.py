"""Benchmarks (run with --benchmark-enable): quantizing a Qwen2.5-0.5B FFN matrix, and making
random blocks for the largest GPT-OSS-20B expert tensor slice."""
import numpy as np
import pytest

from orcd import quant


@pytest.mark.parametrize("name", ["Q4_K", "Q6_K", "Q8_0"])
def test_bench_quantize_ffn_matrix(benchmark, name):
    x = np.random.default_rng(0).standard_normal((896, 4864)).astype(np.float32) * 0.02
    raw = benchmark(quant.quantize, x, name)
    assert raw.shape == (896, quant.row_bytes(name, 4864))


def test_bench_random_blocks_mxfp4_experts(benchmark):
    shape = (4, 2880, 2880)  # 4 of gpt-oss's 32 experts: 33M values, 17.5 MB
    raw = benchmark(quant.random_blocks, "MXFP4", shape, np.random.default_rng(0))
    assert raw.shape == (4, 2880, quant.row_bytes("MXFP4", 2880))
