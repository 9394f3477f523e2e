"""`orcd bench server` runs end to end against a real worker (its figures are not judged here)."""
import argparse

from orcd.bench import server as bench


def test_bench_server_measures_every_figure(tiny_model, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    args = argparse.Namespace(model=str(tiny_model), device="cpu", url=None, runs=2, tokens=4,
                              health_requests=20, json=False)
    with bench.started_worker(args) as worker:
        figures = bench.measure(worker, args)
    for name in ("ttft_ms_p50", "inter_token_ms_p95", "health_ms_p99", "cancel_ms_max"):
        assert figures[name] >= 0.0, figures
    assert figures["runs"] == 2
