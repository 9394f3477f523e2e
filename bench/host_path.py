"""The worker's host path without a GPU: `orcd serve --device cpu --trace` whose NumPy forward
pass is a stand-in that sleeps as long as the H200 takes (prefill 45,000 tokens/s, at least
0.3 ms; decode 1 ms a token) and predicts a fixed token. What is left to time is the code the
GPU box runs too: hypercorn and Quart, the request's validation, tokenization, the prompt
cache's prefix search, the hand-offs between the event loop and the engine thread, the frames.

    python3 bench/host_path.py [--runs 25] [--turns 25] [--model FILE.gguf]

prints time to first text of (a) completions of the bench's ~20-token prompts and (b) turns
2.. of its prefix-cache conversation (orcd/bench/server.py), each with its trace stage by
stage (median µs; orcd/server/trace.py), then /health during a 1,500-token stream.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from orcd.bench.http_client import started_worker
from orcd.bench.server import (PROMPTS, SYSTEM_PROMPT, TURN_QUESTIONS, health_during_decode, ms,
                               trace_breakdown)

PREFILL_TOKENS_PER_S = 45_000  # SmolLM2 on the H200 (issue 17)
DECODE_STEP_S = 0.001
SHORTEST_FORWARD_S = 0.0003


def stand_in_worker(argv: list[str]) -> int:
    """`orcd serve` with the stand-in forward pass (this script run with --worker)."""
    import orcd.engine.cpu as cpu
    from orcd.cli import main
    from orcd.gguf import open as open_gguf
    from orcd.models import describe

    class Model:
        def __init__(self, config, ctx):
            self.config, self.ctx = config, ctx

    class Cache:
        def __init__(self, config, ctx):
            self.length, self.ctx = 0, ctx

        def truncate(self, n):
            self.length = min(self.length, n)

    def load(path, ctx, progress_cb=None):
        with open_gguf(path) as f:
            return Model(describe(f), ctx)

    def forward(model, tokens, cache, last_only=False):
        n = len(tokens)
        time.sleep(DECODE_STEP_S if n == 1 else max(SHORTEST_FORWARD_S, n / PREFILL_TOKENS_PER_S))
        cache.length += n
        logits = np.zeros((1 if last_only else n, model.config.vocab_size), np.float32)
        logits[:, 1000 + cache.length % 7] = 1.0  # ordinary text tokens of SmolLM2's vocabulary
        return logits

    cpu.forward, cpu.load, cpu.KVCache = forward, load, Cache
    return main(argv)


def first_text(streams) -> list[float]:
    return [s.text_arrivals()[0] - s.sent for s in streams]


def report(name: str, streams, log_path: str) -> None:
    times = first_text(streams)
    print(f"{name}: first text {ms(times, 50):.3f} / {ms(times, 95):.3f} ms p50 / p95 ({len(streams)} requests)")
    for stage, us in trace_breakdown(log_path, streams).items():
        print(f"  {stage:44s} {us:10.1f}")


def run(args) -> None:
    with started_worker(args.model, "cpu", "--trace", launcher=[__file__, "--worker"]) as (server, log_path):
        server.complete({"prompt": PROMPTS[0], "max_tokens": 4, "temperature": 0})  # warm-up
        plain = [server.complete({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 20, "temperature": 0})
                 for i in range(args.runs)]
        conversation, turns = SYSTEM_PROMPT, []
        for turn in range(args.turns):
            conversation += f"\nUser: {TURN_QUESTIONS[turn % len(TURN_QUESTIONS)]}\nArchivist:"
            turns.append(server.complete({"prompt": conversation, "max_tokens": 16, "temperature": 0}))
            conversation += turns[-1].text
        health = health_during_decode(server, 300)
        time.sleep(0.2)  # the last trace line is written once its response has been sent
        report("(a) ~20-token prompts", plain, log_path)
        report("(b) prefix-cache turns 2..", turns[1:], log_path)
    print(f"/health during decode: {health['health_ms_p50']:.3f} / {health['health_ms_p99']:.3f} ms p50 / p99")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(stand_in_worker(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="completions of (a) (default 25)")
    parser.add_argument("--turns", type=int, default=25, help="turns of (b) (default 25)")
    parser.add_argument("--model", help="GGUF file (default: the bundled SmolLM2)")
    run(parser.parse_args())
