"""`orcd bench server` runs end to end against a real worker (its figures are not judged here)."""
import argparse

from orcd.bench import server as bench
from orcd.bench.http_client import started_worker


def test_bench_server_measures_every_figure(tiny_model, monkeypatch, capsys):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(bench, "SYSTEM_PROMPT", bench.SYSTEM_PROMPT[:1500])  # the tiny vocabulary
    args = argparse.Namespace(runs=2, tokens=4, health_requests=20, prefix_turns=3)
    with started_worker(str(tiny_model), "cpu", "--trace") as (server, log_path):
        figures, streams = bench.measure(server, args)
        breakdown = bench.trace_breakdown(log_path, streams)
    for name in ("ttft_ms_p50", "ttft_kept_ms_p50", "inter_token_ms_p95", "health_ms_p99", "cancel_ms_max",
                 "prefix_ttft_ms_p50", "prefix_nocache_ttft_ms_p50"):
        assert figures[name] >= 0.0, figures
    assert figures["health_requests"] > 0
    assert "received -> handler" in breakdown and breakdown["total"] > 0
    print(bench.table(figures, {"model": "tiny"}, figures, "http://peer"))
    assert "orcd/peer" in capsys.readouterr().out
