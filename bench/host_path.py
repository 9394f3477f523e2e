"""The worker's host path without a GPU: `orcd serve --trace` whose forward pass is a stand-in
that takes as long as the H200 (prefill 45,000 tokens/s, and a short prompt's first id 1.26 ms
after the job starts; decode 1 ms a token) and predicts a fixed token. What is left to time is
the code the GPU box runs too: hypercorn and Quart, the request's validation, tokenization, the
prompt cache's prefix search, the hand-offs between the event loop and the engine thread, the
frames.

    python3 bench/host_path.py [--runs 25] [--turns 25] [--health 300] [--engine cuda|cpu]
                               [--model FILE.gguf]

prints time to first text of (a) completions of the bench's ~20-token prompts and (b) turns
2.. of its prefix-cache conversation (orcd/bench/server.py), each with its trace stage by
stage (median µs; orcd/server/trace.py), then /health during 1,500-token streams (as many as
--health probes take) with where the probes waited (before the worker read the request, or
after: its answer and the client's read), and the worker's garbage collections met on the way.

--engine cuda (the default) runs the real CudaEngine over a stand-in for the binding's
DeviceModel whose ids appear on a kernel timer, as the C decode loop publishes them to its
ring: no thread of the worker takes the GIL to make them, and the engine thread waits for
them with the GIL released. --engine cpu runs the CpuEngine, whose NumPy forward pass is
replaced by a sleep on the engine thread.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import select
import sys
import tempfile
import time

import numpy as np

from orcd.bench.http_client import started_worker
from orcd.bench.server import (PROMPTS, SYSTEM_PROMPT, TURN_QUESTIONS, health_probes, ms,
                               trace_breakdown)
from orcd.errors import Cancelled

PREFILL_TOKENS_PER_S = 45_000  # SmolLM2 on the H200 (issue 17)
DECODE_STEP_S = 0.001
# SmolLM2 on the H200: a ~20-token prompt's prefill and first id (README, session 18). The host
# work the worker does meanwhile (the response's head, the narration) is off the first token's
# path there, and must be here too: with 0.3 ms it was not, and the trace put 0.1-0.3 ms of it
# between engine_first_id and first_event.
SHORTEST_PREFILL_S = 0.00126


def prefill_seconds(n: int) -> float:
    return max(SHORTEST_PREFILL_S, n / PREFILL_TOKENS_PER_S)


def stand_in_id(position: int) -> int:
    return 1000 + position % 7  # ordinary text tokens of SmolLM2's vocabulary


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


def timespec(seconds: float) -> Timespec:
    return Timespec(int(seconds), round(seconds % 1 * 1e9))


class StandInDevice:
    """orcd._cuda.DeviceModel's job calls without a GPU. A job's ids are the expirations of a
    timerfd (timerfd_create(2)) armed for the prefill, then every decode step; read_tokens
    waits for them in select(), the GIL released, as the binding waits on the ring's condition
    variable."""
    CLOCK_MONOTONIC = 1

    def __init__(self, gpu_device: int = 0) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._timer = self._libc.timerfd_create(self.CLOCK_MONOTONIC, os.O_NONBLOCK)
        if self._timer < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self._times: dict[str, int] = {}
        self._prompt = self._published = self._max_tokens = 0
        self._finished, self._cancelled = True, False

    def _arm(self, first_s: float, every_s: float) -> None:
        """Expirations reset; (0, 0) disarms."""
        spec = Itimerspec(timespec(every_s), timespec(first_s))
        if self._libc.timerfd_settime(self._timer, 0, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def load(self, config, ctx, tensors, chunk_bytes, progress_cb=None) -> None:
        if progress_cb is not None:
            progress_cb(100)

    def start_job(self, prompt_ids, params, max_tokens, stop_ids, n_cached=0, top_logprobs=-1,
                  prompt_logprobs=False, constrained=False) -> None:
        entered = time.perf_counter_ns()
        self._prompt, self._published, self._max_tokens = len(prompt_ids), 0, max_tokens
        self._finished, self._cancelled = False, False
        prefill = prefill_seconds(len(prompt_ids) - n_cached)
        self._arm(prefill, DECODE_STEP_S)
        # the stamps the C loop takes: entering the job, its first id on the host
        self._times = {"entered": entered, "first_id": entered + round(prefill * 1e9)}

    def read_tokens(self, start: int, timeout_ms: int, top_n: int = -1):
        if self._published <= start and not self._finished:
            if select.select([self._timer], [], [], timeout_ms / 1000)[0]:
                expired = int.from_bytes(os.read(self._timer, 8), "little")
                self._published = min(self._max_tokens, self._published + expired)
            if self._published == self._max_tokens:
                self._end()
        return [stand_in_id(self._prompt + k) for k in range(start, self._published)], self._finished

    def _end(self) -> None:
        self._arm(0, 0)
        self._finished = True

    def job_running(self) -> bool:
        return not self._finished

    def job_error(self, wait: bool = False):
        return Cancelled("the job was cancelled") if self._cancelled else None

    def cancel(self) -> None:
        self._cancelled = not self._finished
        self._end()

    def job_times(self) -> dict[str, int]:
        return dict(self._times)

    def stats(self) -> dict:
        return {"vram_bytes_used": 0}

    def resident(self) -> bool:
        return True

    check_residency = resident

    def close(self) -> None:
        self._end()


class StandInBinding:
    """What CudaEngine asks of orcd._cuda besides its DeviceModel."""
    DeviceModel = StandInDevice

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def device_info(gpu_device: int) -> dict:
        return {"name": "stand-in (bench/host_path.py)", "sm": 90, "free_bytes": 1 << 40}

    @staticmethod
    def runtime_version() -> int:
        return 12080

    @staticmethod
    def vram_required(config, ctx, weight_bytes) -> int:
        return weight_bytes


def stand_in_worker(record_file: str, argv: list[str]) -> int:
    """`orcd serve` with the stand-in forward pass (this script run with --worker RECORD_FILE);
    written to RECORD_FILE at the end: its garbage collections ([start ns, ns, generation]
    each) and when it read each request's bytes (perf_counter_ns, as hypercorn hands them to
    the protocol)."""
    from hypercorn.events import RawData

    import orcd.engine.cpu as cpu
    import orcd.engine.cuda as cuda
    from orcd.cli import main
    from orcd.gguf import open as open_gguf
    from orcd.models import describe
    from orcd.server import http_layer

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
        time.sleep(DECODE_STEP_S if n == 1 else prefill_seconds(n))
        cache.length += n
        logits = np.zeros((1 if last_only else n, model.config.vocab_size), np.float32)
        logits[:, stand_in_id(cache.length)] = 1.0
        return logits

    cpu.forward, cpu.load, cpu.KVCache = forward, load, Cache
    cuda.binding = StandInBinding
    collections, started, reads = [], [0], []

    def timed(phase, info):
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            collections.append((started[0], time.perf_counter_ns() - started[0], info["generation"]))

    answering = http_layer.answering_health

    def answering_stamped(state):
        handle = answering(state)

        async def stamped(protocol, event):
            if type(event) is RawData and event.data:
                reads.append(time.perf_counter_ns())
            await handle(protocol, event)
        return stamped

    http_layer.answering_health = answering_stamped
    gc.callbacks.append(timed)
    try:
        return main(argv)
    finally:
        with open(record_file, "w") as f:
            json.dump({"collections": collections, "reads": reads}, f)


def first_text(streams) -> list[float]:
    return [s.text_arrivals()[0] - s.sent for s in streams]


def report(name: str, streams, log_path: str) -> None:
    times = first_text(streams)
    print(f"{name}: first text {ms(times, 50):.3f} / {ms(times, 95):.3f} ms p50 / p95 ({len(streams)} requests)")
    for stage, us in trace_breakdown(log_path, streams).items():
        print(f"  {stage:44s} {us:10.1f}")


def during(collections, spans) -> list:
    """The collections that overlap any of the (start, end) spans, perf_counter seconds."""
    return [c for c in collections
            if any(c[0] / 1e9 < end and (c[0] + c[1]) / 1e9 > start for start, end in spans)]


def gc_summary(collections) -> str:
    if not collections:
        return "none"
    by_generation = {}
    for _, ns, generation in collections:
        by_generation.setdefault(generation, []).append(ns / 1000)
    return ", ".join(f"gen {g}: {len(us)} (median {np.median(us):.0f} µs, max {max(us):.0f})"
                     for g, us in sorted(by_generation.items()))


def where_probes_waited(probes, reads, over_s: float) -> str:
    """Medians, in ms, of the probes' time before the worker read the request and after (its
    answer, the client's read of it): of every probe and of those slower than over_s."""
    reads_s = np.array(reads) / 1e9
    parts = []
    for sent, took in probes:
        i = np.searchsorted(reads_s, sent)
        if i < len(reads_s) and reads_s[i] < sent + took:
            parts.append((took, reads_s[i] - sent, sent + took - reads_s[i]))
    parts = np.array(parts).reshape(-1, 3)
    slow = parts[parts[:, 0] > over_s]

    def medians(rows):
        return " / ".join(f"{v:.3f}" for v in np.median(rows[:, 1:], axis=0) * 1000) if len(rows) else "-"
    return (f"before the worker read / after, median ms: {medians(parts)} ({len(parts)} probes); "
            f"over {over_s * 1000:g} ms: {medians(slow)} ({len(slow)})")


def run(args) -> None:
    sys.setswitchinterval(0.0005)  # as orcd bench server: the stream's reader must not delay a probe
    with tempfile.NamedTemporaryFile(prefix="orcd-host-path-", suffix=".json") as record_file:
        launcher = [__file__, "--worker", record_file.name]
        with started_worker(args.model, args.engine, "--trace", launcher=launcher) as (server, log_path):
            server.complete({"prompt": PROMPTS[0], "max_tokens": 4, "temperature": 0})  # warm-up
            plain = [server.complete({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 20, "temperature": 0})
                     for i in range(args.runs)]
            conversation, turns = SYSTEM_PROMPT, []
            for turn in range(args.turns):
                conversation += f"\nUser: {TURN_QUESTIONS[turn % len(TURN_QUESTIONS)]}\nArchivist:"
                turns.append(server.complete({"prompt": conversation, "max_tokens": 16, "temperature": 0}))
                conversation += turns[-1].text
            probes, streams_spans = [], []
            while len(probes) < args.health:
                stream = health_probes(server, args.health - len(probes))
                streams_spans.append((stream[0][0], sum(stream[-1])))
                probes += stream
            time.sleep(0.2)  # the last trace line is written once its response has been sent
            for name, streams in (("(a) ~20-token prompts", plain), ("(b) prefix-cache turns 2..", turns[1:])):
                if streams:
                    report(name, streams, log_path)
        with open(record_file.name) as f:
            record = json.load(f)
    collections = record["collections"]
    timed = plain + turns[1:]
    first_paths = [(s.sent, s.text_arrivals()[0]) for s in timed]
    hit = sum(bool(during(collections, [span])) for span in first_paths)
    print(f"worker GC on a first text's path: {hit} of {len(timed)} requests; "
          f"{gc_summary(during(collections, first_paths))}")
    if probes:
        health = [took for _, took in probes]
        print(f"/health during decode: {ms(health, 50):.3f} / {ms(health, 99):.3f} / {ms(health, 100):.3f} ms "
              f"p50 / p99 / max ({len(health)} probes, {len(streams_spans)} streams)")
        print(f"  {where_probes_waited(probes, record['reads'], 0.001)}")
        print(f"worker GC during those streams: {gc_summary(during(collections, streams_spans))}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(stand_in_worker(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="completions of (a) (default 25)")
    parser.add_argument("--turns", type=int, default=25, help="turns of (b) (default 25)")
    parser.add_argument("--health", type=int, default=300,
                        help="GET /health probes during 1,500-token streams (default 300)")
    parser.add_argument("--engine", choices=("cuda", "cpu"), default="cuda",
                        help="the engine whose Python runs (default cuda; see above)")
    parser.add_argument("--model", help="GGUF file (default: the bundled SmolLM2)")
    run(parser.parse_args())
