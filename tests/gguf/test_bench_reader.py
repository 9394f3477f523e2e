"""Opening SmolLM2 (header, 33 keys incl. 49k tokens and 48k merges, 272 tensor infos):
orcd.gguf.open vs gguf-py's GGUFReader. Run with --benchmark-enable."""
from __future__ import annotations

import gguf
import pytest

import orcd.gguf


def open_and_close(path) -> int:
    with orcd.gguf.open(path) as f:
        return len(f.tensors)


@pytest.mark.benchmark(group="gguf-open-smollm2")
def test_bench_orcd_open(benchmark, smollm2_path):
    assert benchmark(open_and_close, smollm2_path) == 272


@pytest.mark.benchmark(group="gguf-open-smollm2")
def test_bench_gguf_py_reader(benchmark, smollm2_path):
    if benchmark.disabled:  # one open costs seconds; test_gguf_reader.py checks its output
        pytest.skip("gguf-py's GGUFReader is only timed with --benchmark-enable")
    # Seconds per open: a few rounds give a stable figure without stretching the run.
    reader = benchmark.pedantic(gguf.GGUFReader, args=(smollm2_path,), rounds=3, iterations=1)
    assert len(reader.tensors) == 272
