"""ncu of one cached chat turn's kernels on the GPU box: where a resent conversation's first id
goes (issue 17's prefix scenario, below the HTTP layer).

    ncu --profile-from-start off --cache-control none --clock-control none \\
        --section SpeedOfLight --section Occupancy --csv --page details \\
        python3 bench/profile_turn.py MODEL.gguf > turn.csv
    python3 bench/profile_turn.py --table turn.csv

The first form fills the engine's cache with a 2,000-id conversation and three cached turns,
then profiles one more turn (+30 ids, its prefill and first id) between cudaProfilerStart and
Stop, so that only its kernels are measured (ncu serializes them: no launch overlaps). The
second prints each kernel's count, total and mean µs and grid sizes, largest total first.
Seen on 2026-12-03 (Qwen2.5-0.5B shape, H200, head 7f0c2de): 257 kernels; ffn_down 16.6 /
17.4 µs (Q4_K / Q6_K), gate/up 18.0, the clustered q/k, v and o 8.0-8.3, attention 12.0 + its
combine 5.8, rmsnorm 4.6 (49 of them), rope_store 4.2, swiglu 3.3.
"""
from __future__ import annotations

import argparse
import collections
import csv
import io
import random

UNITS_US = {"ns": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def profiled_turn(model: str) -> None:
    import torch
    from job_path import cached_turn, ids, stream  # bench/, beside this script

    from orcd.engine.cuda import CudaEngine

    engine = CudaEngine()
    engine.load(model, 4096)
    vocab, rng = engine.config.vocab_size, random.Random(0)
    history = ids(vocab, 2000, rng)
    history += list(stream(engine, history, 8))
    for _ in range(3):
        cached_turn(engine, rng, vocab, history)
    prompt = history + ids(vocab, 30, rng)
    n_cached = engine.reusable_prefix(prompt)
    torch.cuda.init()
    torch.cuda.cudart().cudaProfilerStart()
    list(stream(engine, prompt, 1, n_cached))
    torch.cuda.cudart().cudaProfilerStop()
    engine.close()


def table(path: str) -> str:
    lines = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    rows = csv.DictReader(io.StringIO("\n".join(x for x in lines[start:] if x.startswith('"'))))
    launches: dict[int, tuple[str, str, float]] = {}  # id: kernel, grid, duration (µs)
    for r in rows:
        if r["Metric Name"] == "Duration":
            us = float(r["Metric Value"].replace(",", "")) * UNITS_US[r["Metric Unit"]]
            launches[int(r["ID"])] = (r["Kernel Name"].split("(")[0], r["Grid Size"], us)
    times, grids = collections.defaultdict(list), collections.defaultdict(set)
    for _, (key, grid, us) in sorted(launches.items()):
        times[key].append(us)
        grids[key].add(grid)
    out = [f"{'total us':>9s} {'count':>5s} {'mean us':>8s}  kernel (grid sizes)"]
    for key, t in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        grid = ", ".join(sorted(grids[key]))
        out.append(f"{sum(t):9.1f} {len(t):5d} {sum(t) / len(t):8.2f}  {key} ({grid})")
    out.append(f"{sum(sum(t) for t in times.values()):9.1f} {sum(len(t) for t in times.values()):5d}"
               f"           every kernel")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="GGUF file: profile one cached turn (under ncu)")
    p.add_argument("--table", metavar="CSV", help="print the per-kernel table of ncu's csv")
    args = p.parse_args()
    if args.table:
        print(table(args.table))
    elif args.model:
        profiled_turn(args.model)
    else:
        p.error("give a model, or --table CSV")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
