"""Benchmarks (run with --benchmark-enable): the CPU engine on SmolLM2 — one decode step, a
16-token greedy generation (what the server's CI jobs cost), and a 64-token prefill."""
import threading

from orcd.engine.sampling import SamplingParams
from orcd.reference import KVCache, forward

GREEDY = SamplingParams(temperature=0.0)


def test_bench_decode_step(benchmark, smollm2_engine):
    model = smollm2_engine.model
    cache = KVCache(model.config, model.ctx)
    forward(model, list(range(100, 132)), cache)

    def step():
        cache.truncate(32)
        return forward(model, [7], cache)
    assert benchmark(step).shape == (1, model.config.vocab_size)


def test_bench_generate_16_tokens(benchmark, smollm2_engine, chat_ids):
    ids = chat_ids("Say hi.")

    def generate():
        return list(smollm2_engine.generate(ids, GREEDY, 16, set(), threading.Event()))
    assert len(benchmark.pedantic(generate, rounds=3)) == 16


def test_bench_prefill_64_tokens(benchmark, smollm2_engine):
    model = smollm2_engine.model

    def prefill():
        return forward(model, list(range(1000, 1064)), KVCache(model.config, 128), last_only=True)
    assert benchmark(prefill).shape == (1, model.config.vocab_size)
