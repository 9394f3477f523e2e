"""Where a CUDA job's time goes before its first id, below the HTTP layer (issue 17).

    python3 bench/job_path.py MODEL.gguf [--kernels OUT.txt]

Times, on the real CudaEngine (median of --runs): the per-job residency check; the first id
of a fresh prompt of 2 .. 2,000 tokens (prefill + first sample + publish, no cache); a chat
turn that adds ~30 tokens to a 2,000-token conversation the cache holds; and the decode step.
With --kernels, torch.profiler (CUPTI sees every kernel of the process, ours too) records a
20-token job, a 512-token one, a cached turn and 64 decode steps, and writes each one's GPU kernels
(count, total and mean µs) and the GPU-busy share of its wall time: what is GPU work and what is
launch overhead; for the decode steps also one step's kernels in order (duration, gap before).
"""
from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

from orcd.bench.decode import GREEDY, timed_stream
from orcd.engine.cuda import CudaEngine


def ids(vocab: int, n: int, rng: random.Random) -> list[int]:
    return [rng.randrange(3, vocab) for _ in range(n)]


def stream(engine: CudaEngine, prompt: list[int], tokens: int, n_cached: int = 0):
    return engine.generate(prompt, GREEDY, tokens, set(), threading.Event(), n_cached)


def first_id_s(engine: CudaEngine, prompt: list[int]) -> float:
    return timed_stream(stream(engine, prompt, 1))[0]


def median_ms(f, runs: int) -> float:
    return statistics.median(f() for _ in range(runs)) * 1e3


def cached_turn(engine: CudaEngine, rng: random.Random, vocab: int, history: list[int]):
    """One more turn of a conversation whose rows the cache holds: (seconds, cached ids)."""
    prompt = history + ids(vocab, 30, rng)
    n_cached = engine.reusable_prefix(prompt)
    start = time.perf_counter()
    out = list(stream(engine, prompt, 8, n_cached))
    elapsed = time.perf_counter() - start
    history[:] = prompt + out
    return elapsed, n_cached


def kernels(engine: CudaEngine, vocab: int, rng: random.Random, path: str) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.init()
    conversation = ids(vocab, 2000, rng)
    list(stream(engine, conversation, 8))
    with open(path, "w") as out:
        for name, job in (("20-token prompt, first id", lambda: first_id_s(engine, ids(vocab, 20, rng))),
                          ("512-token prompt, first id", lambda: first_id_s(engine, ids(vocab, 512, rng))),
                          ("cached turn (+30 of 2,000), 8 ids",
                           lambda: cached_turn(engine, rng, vocab, conversation)[0]),
                          ("64 decode steps after a 20-token prompt",
                           lambda: timed_stream(stream(engine, ids(vocab, 20, rng), 65))[1])):
            job()  # warm
            with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
                wall = job()
            events = [e for e in prof.events() if e.device_type.name == "CUDA"]
            busy = sum(getattr(e, 'device_time', 0) or getattr(e, 'cuda_time', 0) for e in events)
            out.write(f"== {name}: wall {wall * 1e3:.3f} ms, GPU busy {busy / 1e3:.3f} ms, "
                      f"{len(events)} GPU events\n")
            out.write(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25) + "\n")
            spans = sorted((e.time_range.start, e.time_range.end, e.name) for e in events)
            if spans:
                gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
                out.write(f"first GPU event {spans[0][0] - min(e.time_range.start for e in prof.events()):.0f} us "
                          f"after the first CPU event; GPU span {spans[-1][1] - spans[0][0]:.0f} us; "
                          f"gaps between kernels: sum {sum(g for g in gaps if g > 0):.0f} us, "
                          f"largest {sorted(gaps)[-5:]}\n")
            if name.startswith("64 decode"):
                out.write(one_step(spans))


def one_step(spans) -> str:
    """The kernels of the 32nd decode step in order: from one embedding lookup to the next."""
    starts = [i for i, (_, _, name) in enumerate(spans) if "embed" in name]
    if len(starts) < 34:
        return f"one step: only {len(starts)} embedding kernels seen\n"
    lines = ["one decode step, kernel by kernel (us: duration, gap before it):"]
    for i in range(starts[32], starts[33]):
        start, end, name = spans[i]
        lines.append(f"  {end - start:7.2f} {start - spans[i - 1][1]:6.2f}  {name[:90]}")
    step = spans[starts[33]][0] - spans[starts[32]][0]
    return "\n".join(lines) + f"\nstep {step:.1f} us\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--kernels", help="write torch.profiler kernel tables here")
    args = p.parse_args()
    engine = CudaEngine()
    engine.load(args.model, 4096)
    vocab, rng = engine.config.vocab_size, random.Random(0)
    list(stream(engine, ids(vocab, 20, rng), 4))  # warm: the decode graph is captured
    print(f"{args.model}: {engine.config.block_count} layers, vocab {vocab}")
    t = []
    for _ in range(args.runs):
        start = time.perf_counter()
        engine.check_residency()
        t.append(time.perf_counter() - start)
    print(f"residency check      {statistics.median(t) * 1e3:8.3f} ms")
    for n in (2, 8, 20, 64, 200, 512, 2000):
        ms = median_ms(lambda: first_id_s(engine, ids(vocab, n, rng)), args.runs)
        print(f"first id, {n:5d} tokens {ms:8.3f} ms")
    history = ids(vocab, 2000, rng)
    list(stream(engine, history, 8))
    turns = [cached_turn(engine, rng, vocab, history) for _ in range(args.runs)]
    print(f"cached turn +30, 8 ids {statistics.median(s for s, _ in turns) * 1e3:8.3f} ms "
          f"(cached {turns[-1][1]} of {len(history) - 8})")
    _, span, n = timed_stream(stream(engine, ids(vocab, 20, rng), 257))
    print(f"decode step          {span / (n - 1) * 1e3:8.3f} ms")
    if args.kernels:
        kernels(engine, vocab, rng, args.kernels)
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
