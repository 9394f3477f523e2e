"""`orcd bench server`: the worker's HTTP latencies, from a real client on loopback.

- time to first token: from sending POST /execute to the first `token` frame read
- inter-token time p50/p95: gaps between consecutive `token` frames, over every run
- /health p50/p99 while a long decode streams on another connection
- cancel latency: from sending POST /cancel to the stream's terminal `error` frame
SPEC §10 gives llama-server's figures on the Qwen2.5-0.5B-shape file on the H100 box for
comparison: first token 8.0 ms p50; inter-token 1.6 ms p50, 2.7 ms p95; /health 0.47 ms p50,
0.82 ms p99 during decode.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from orcd.commands import env_default, flag

HELP = "time to first token, inter-token time, /health during decode and cancel latency over HTTP"
# An open sentence, about 32 tokens in the targets' vocabularies: greedy decoding continues it
# rather than ending at once (a finished request made SmolLM2 emit EOS as its first token).
PROMPT = ("The old lighthouse keeper found a bottle on the rocks one stormy night. Inside was a "
          "letter, and its first line said that")
READY_TIMEOUT_SEC = 300.0


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="PATH", default=env_default("--model"),
                        help="GGUF file for the worker (default: the bundled SmolLM2)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=env_default("--device", "cuda"))
    parser.add_argument("--url", default=env_default("--url"),
                        help="measure an already running worker (http://host:port) instead of starting one")
    parser.add_argument("--runs", type=int, default=env_default("--runs", 20, int),
                        help="jobs for first-token and inter-token times, and cancels (default 20)")
    parser.add_argument("--tokens", type=int, default=env_default("--tokens", 64, int),
                        help="max_tokens of each timed job (default 64)")
    parser.add_argument("--health-requests", type=int, default=env_default("--health-requests", 500, int),
                        help="GET /health calls during a long decode (default 500)")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of a table")


class Worker:
    """A loopback connection to the worker; one per concurrent stream."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def post(self, conn, path: str, body: dict) -> http.client.HTTPResponse:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse()


def frames(response: http.client.HTTPResponse):
    """(event, data, arrival time) per SSE frame, timed when its data line is read."""
    event = None
    while line := response.readline():
        line = line.decode("utf-8").rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:]), time.perf_counter()
            if event in ("end", "error"):
                return


def timed_job(worker: Worker, job_id: str, max_tokens: int) -> tuple[float, list[float]]:
    """(seconds to the first token, gaps between tokens) of one greedy job."""
    conn = worker.connect()
    sent = time.perf_counter()
    response = worker.post(conn, "/execute", {"job_id": job_id, "prompt": PROMPT,
                                              "max_tokens": max_tokens, "temperature": 0})
    seen = list(frames(response))
    conn.close()
    arrivals = [t for kind, _, t in seen if kind == "token"]
    if not arrivals:
        raise SystemExit(f"orcd bench server: job {job_id} streamed no token (HTTP "
                         f"{response.status}; events {[(kind, data) for kind, data, _ in seen]})")
    return arrivals[0] - sent, list(np.diff(arrivals))


@contextlib.contextmanager
def long_job(worker: Worker, job_id: str):
    """A long decode on its own connection, yielded (as its frame iterator) once its first token
    has arrived. Nobody reads it meanwhile: the worker keeps decoding into the socket buffer,
    and the client spends no time (nor GIL) on it while it measures something else."""
    conn = worker.connect()
    response = worker.post(conn, "/execute", {"job_id": job_id, "prompt": PROMPT, "max_tokens": 2048,
                                              "temperature": 1.0, "seed": 1})
    stream = frames(response)
    next(kind for kind, _, _ in stream if kind == "token")
    try:
        yield stream
    finally:
        control = worker.connect()
        worker.post(control, "/cancel", {"job_id": job_id}).read()
        control.close()
        for _ in stream:
            pass
        conn.close()


def health_during_decode(worker: Worker, requests: int) -> list[float]:
    with long_job(worker, "bench-health"):
        conn, times = worker.connect(), []
        for _ in range(requests):
            sent = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            times.append(time.perf_counter() - sent)
        conn.close()
    return times


def cancel_latency(worker: Worker, job_id: str) -> float:
    """From sending /cancel to reading the terminal frame; the few tokens decoded in between
    are read first, so the figure is an upper bound."""
    with long_job(worker, job_id) as stream:
        control = worker.connect()
        sent = time.perf_counter()
        control.request("POST", "/cancel", json.dumps({"job_id": job_id}),
                        {"Content-Type": "application/json"})
        kind, data, arrived = list(stream)[-1]
        control.getresponse().read()
        control.close()
    if (kind, data.get("code")) != ("error", "CANCELLED"):
        raise RuntimeError(f"the cancelled job ended with {kind} {data}")
    return arrived - sent


def wait_idle(worker: Worker) -> None:
    conn = worker.connect()
    while True:
        conn.request("GET", "/health")
        if not json.loads(conn.getresponse().read())["busy"]:
            conn.close()
            return
        time.sleep(0.001)


def measure(worker: Worker, args) -> dict:
    timed_job(worker, "bench-warmup", 4)
    ttft, gaps = [], []
    for i in range(args.runs):
        first, between = timed_job(worker, f"bench-{i}", args.tokens)
        ttft.append(first)
        gaps += between
    health = health_during_decode(worker, args.health_requests)
    cancels = []
    for i in range(args.runs):
        wait_idle(worker)
        cancels.append(cancel_latency(worker, f"bench-cancel-{i}"))
    ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1000.0, 3)  # noqa: E731
    return {"ttft_ms_p50": ms(ttft, 50), "ttft_ms_p95": ms(ttft, 95),
            "inter_token_ms_p50": ms(gaps, 50), "inter_token_ms_p95": ms(gaps, 95),
            "health_ms_p50": ms(health, 50), "health_ms_p99": ms(health, 99),
            "cancel_ms_p50": ms(cancels, 50), "cancel_ms_max": ms(cancels, 100),
            "runs": args.runs, "tokens": args.tokens, "health_requests": args.health_requests}


@contextlib.contextmanager
def started_worker(args):
    """`orcd serve` on a free loopback port, stopped (SIGTERM) afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "orcd.cli", "serve", "--device", args.device, "--port", str(port)]
    if args.model:
        argv += ["--model", args.model]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL, env=dict(os.environ))
        try:
            wait_ready(proc, port, log)
            yield Worker("127.0.0.1", port)
        finally:
            proc.terminate()
            proc.wait(30)


def wait_ready(proc: subprocess.Popen, port: int, log) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"orcd serve exited with {proc.returncode}:\n{log.read()[-4000:]}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"orcd serve was not ready within {READY_TIMEOUT_SEC:.0f} s")


def table(figures: dict, health: dict) -> str:
    rows = [("time to first token", "ttft_ms_p50", "ttft_ms_p95", "p50 / p95"),
            ("inter-token time", "inter_token_ms_p50", "inter_token_ms_p95", "p50 / p95"),
            ("/health during decode", "health_ms_p50", "health_ms_p99", "p50 / p99"),
            ("cancel -> terminal event", "cancel_ms_p50", "cancel_ms_max", "p50 / max")]
    head = f"{health['model']} ({health['arch']}, {health['quant_kind']}) on {health['device']} " \
           f"{health.get('gpu_name') or ''}".rstrip()
    lines = [head, f"{'figure':28s} {'ms':>20s}"]
    for name, a, b, label in rows:
        lines.append(f"{name:28s} {figures[a]:9.3f} / {figures[b]:<9.3f} {label}")
    return "\n".join(lines)


def run(args) -> int:
    if args.url:
        host, _, port = args.url.removeprefix("http://").rstrip("/").rpartition(":")
        context = contextlib.nullcontext(Worker(host, int(port)))
    else:
        context = started_worker(args)
    with context as worker:
        conn = worker.connect()
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
        conn.close()
        figures = measure(worker, args)
    if args.json:
        print(json.dumps({"worker": health, "figures": figures}, indent=1))
    else:
        print(table(figures, health))
    return 0
