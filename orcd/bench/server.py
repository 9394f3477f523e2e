"""`orcd bench server`: the worker's HTTP latencies from a real client on loopback, through
OpenAI's streaming /v1/completions (temperature 0), beside another server (`--peer URL`,
e.g. llama-server on the same file) when one is given:

- time to first streamed text p50/p95, over five ~20-token prompts: each on a connection of
  its own, and again on one kept-alive connection (as clients that pool their connections,
  e.g. the OpenAI SDK, send them; the connection's first request is not timed); beside it the
  time to the first chunk that carries a generated token, text or not (Streamed.token_arrivals)
- inter-token time p50/p95 and streamed tokens/s, over every run (a completion that streams
  no text, e.g. a synthetic model's, is left out and named on stderr)
- /health p50/p99, one GET every 4 ms while a 1,500-token completion streams
- cancel -> terminal frame (orcd's /cancel; no OpenAI equivalent)
- prefix cache: a ~2,000-token system prompt, then turns that each add ~30 tokens and the
  answer before them (as a chat client resends its conversation); time to first chunk of
  turns 2.. with the prompt cache and with `cache_prompt: false`, and of those turns the time
  to the first token chunk and to the first text, where they streamed one

`--trace` starts the worker with `--trace` and prints where the first token's time went,
stage by stage (see orcd/server/trace.py), from the client's send to its read: for the timed
completions, the prefix scenario's turn 1 and its cached turns. A turn whose tokens have no
text (a synthetic model's) streams no token chunk from orcd (SPEC §2 sends no empty token
event), so its first token is timed there from the trace alone: client sent -> engine_first_id.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import sys
import time

import numpy as np

from orcd.bench.http_client import Background, Server, started_worker
from orcd.commands import env_default, flag
from orcd.server.trace import BESIDE, STAGES

HELP = "first text, inter-token time, /health during decode, cancel and prompt cache over HTTP"
# Open sentences, about 20 tokens each in the targets' vocabularies: greedy decoding continues
# them rather than ending at once.
PROMPTS = (
    "The old lighthouse keeper found a bottle on the rocks one stormy night, and inside it was",
    "In the spring of that year the village decided to build a bridge across the river, because",
    "She opened the letter slowly. The first line, written in her grandmother's hand, said that",
    "The engineers gathered around the strange machine in the basement and wondered why it",
    "After the long winter the farmers met in the market square to talk about the harvest and",
)
HEALTH_PERIOD_SEC = 0.004
LONG_TOKENS = 1500
RECORDS = 49  # records of the system prompt: 2,000 tokens in SmolLM2's vocabulary (41 each)
SYSTEM_PROMPT = "You are the archivist of a small coastal town. " + " ".join(
    f"Record {i}: in year {1800 + 7 * i} the {w} of the {p} was noted by clerk number {i * 13 % 97}, "
    f"who wrote that the {p} had {v} during the {s}."
    for i, (w, p, v, s) in enumerate(zip(
        ["harbour", "mill", "school", "chapel", "bridge", "market", "lighthouse", "bakery"] * 7,
        ["north quarter", "old road", "river bank", "hill farms", "east docks", "square"] * 9,
        ["flooded twice", "been rebuilt", "grown busier", "lost its roof", "changed owners",
         "stood empty", "been painted", "welcomed travellers", "closed early"] * 6,
        ["long winter", "dry summer", "autumn storms", "spring fair", "war years", "great fire"] * 9))
    if i < RECORDS)
TURN_QUESTIONS = [f"What happened in record {i * 3}, and who noted it? Answer in one short line."
                  for i in range(1, 40)]


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="PATH", default=env_default("--model"),
                        help="GGUF file for the worker (default: the bundled SmolLM2)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=env_default("--device", "cuda"))
    parser.add_argument("--url", default=env_default("--url"),
                        help="measure an already running worker (http://host:port) instead of starting one")
    parser.add_argument("--peer", metavar="URL", default=env_default("--peer"),
                        help="measure this server too (e.g. llama-server on the same file) and print "
                             "both side by side with ratios")
    parser.add_argument("--runs", type=int, default=env_default("--runs", 25, int),
                        help="completions timed for first text and inter-token time, and cancels "
                             "(default 25)")
    parser.add_argument("--tokens", type=int, default=env_default("--tokens", 64, int),
                        help="max_tokens of each timed completion (default 64)")
    parser.add_argument("--health-requests", type=int,
                        default=env_default("--health-requests", 300, int),
                        help="GET /health calls, one every 4 ms, during a long decode (default 300)")
    parser.add_argument("--prefix-turns", type=int, default=env_default("--prefix-turns", 25, int),
                        help="turns of the prefix-cache scenario (default 25; 0 skips it)")
    parser.add_argument("--trace", action="store_true", default=env_default("--trace", False, flag),
                        help="start the worker with --trace and print the per-stage breakdown")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of tables")


def ms(values, q) -> float | None:
    return round(float(np.percentile(values, q)) * 1000.0, 3) if len(values) else None


def first_text(server: Server, runs: int, tokens: int) -> tuple[dict, list]:
    ttft, first_token, gaps, rates, streams, silent = [], [], [], [], [], []
    for i in range(runs):
        s = server.complete({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens,
                             "temperature": 0})
        if tokens_seen := s.token_arrivals():
            first_token.append(tokens_seen[0] - s.sent)
        arrivals = s.text_arrivals()
        if not arrivals:  # e.g. a synthetic model's ids that decode to nothing: not timed
            silent.append(f"prompt {i % len(PROMPTS)} (finish_reason {s.finish_reason})")
            continue
        streams.append(s)
        ttft.append(arrivals[0] - s.sent)
        gaps += list(np.diff(arrivals))
        if len(arrivals) > 1:
            rates.append((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]))
    figures = {"ttft_ms_p50": ms(ttft, 50), "ttft_ms_p95": ms(ttft, 95),
               "first_token_ms_p50": ms(first_token, 50), "first_token_ms_p95": ms(first_token, 95),
               "inter_token_ms_p50": ms(gaps, 50), "inter_token_ms_p95": ms(gaps, 95),
               "tokens_per_s": round(float(np.median(rates)), 1) if rates else None}
    if silent:
        print(f"orcd bench server: {server.url} streamed no text for {len(silent)} of {runs} "
              f"completions, which are not timed: {', '.join(sorted(set(silent)))}", file=sys.stderr)
    return figures, streams


def first_text_kept_alive(server: Server, runs: int, tokens: int) -> dict:
    """Time to first text of first_text's completions, one after another on one connection;
    none from a server that closes the connection after a stream (llama-server does)."""
    conn, ttft = server.connect(), []
    try:
        server.complete({"prompt": PROMPTS[0], "max_tokens": 4, "temperature": 0}, conn)
        for i in range(runs):
            s = server.complete({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens,
                                 "temperature": 0}, conn)
            if conn.sock is None:  # the response said it closes: the next would reconnect
                raise ConnectionError("not kept alive")
            if arrivals := s.text_arrivals():
                ttft.append(arrivals[0] - s.sent)
    except (http.client.RemoteDisconnected, ConnectionError):
        ttft = []  # not kept alive: nothing to time
    finally:
        conn.close()
    return {"ttft_kept_ms_p50": ms(ttft, 50), "ttft_kept_ms_p95": ms(ttft, 95)}


def health_during_decode(server: Server, requests: int) -> dict:
    times = [took for _, took in health_probes(server, requests)]
    return {"health_ms_p50": ms(times, 50), "health_ms_p99": ms(times, 99),
            "health_requests": len(times)}


def health_probes(server: Server, requests: int) -> list[tuple[float, float]]:
    """(perf_counter when sent, seconds to the answer's end) of each GET /health, one every 4 ms
    while a long completion streams, until it ends or `requests`."""
    long = Background(server, {"prompt": PROMPTS[0], "max_tokens": LONG_TOKENS,
                               "temperature": 1.0, "seed": 1})
    conn, times = server.connect(), []
    try:
        next_at = time.perf_counter()
        while len(times) < requests and not long.done.is_set():
            next_at += HEALTH_PERIOD_SEC
            sent = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            times.append((sent, time.perf_counter() - sent))
            time.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        conn.close()
        long.close()
    wait_idle(server)
    return times


def cancel_latency(server: Server, runs: int) -> dict:
    """orcd's /cancel on a running completion (its id is the job id): from sending /cancel to
    reading the stream's error frame; tokens decoded in between are read first (an upper bound)."""
    times = []
    for _ in range(runs):
        conn = server.connect()
        response = server.post(conn, "/v1/completions", {"prompt": PROMPTS[1], "max_tokens": LONG_TOKENS,
                                                          "temperature": 1.0, "seed": 2, "stream": True})
        job_id = None
        while job_id is None and (line := response.readline()):
            if line.startswith(b"data: {"):
                job_id = json.loads(line[6:])["id"]
        control = server.connect()
        sent = time.perf_counter()
        server.post(control, "/cancel", {"job_id": job_id}).read()
        arrived = None
        while line := response.readline():
            if line.startswith(b"data: ") and b'"error"' in line:
                arrived = time.perf_counter()
            if line.startswith(b"data: [DONE]"):
                break
        control.close()
        conn.close()
        if arrived is None:
            raise SystemExit("orcd bench server: a cancelled completion ended without an error frame")
        times.append(arrived - sent)
        wait_idle(server)
    return {"cancel_ms_p50": ms(times, 50), "cancel_ms_max": ms(times, 100)}


def prefix_cache(server: Server, turns: int) -> tuple[dict, list]:
    """The conversation twice: with the prompt cache (turn 1 fills it), then without it; and
    the streams of the first run's turns (their traces: turn 1, a whole prompt on a worker
    that has served only short ones, then the cached turns). Turns 2.. are timed to their
    first chunk (`ttft`, whatever it carries: the closing chunk of a turn that streamed
    nothing else), and those that streamed one to their first token chunk and first text."""
    figures, streams, silent, tokenless = {}, [], 0, 0
    for label, extra in (("prefix", {}), ("prefix_nocache", {"cache_prompt": False})):
        conversation, ttft, first_token, first_text = SYSTEM_PROMPT, [], [], []
        for turn in range(turns):
            conversation += f"\nUser: {TURN_QUESTIONS[turn % len(TURN_QUESTIONS)]}\nArchivist:"
            s = server.complete({"prompt": conversation, "max_tokens": 16, "temperature": 0, **extra})
            ttft.append((s.arrivals[0] if s.arrivals else time.perf_counter()) - s.sent)
            tokens_seen, texts = s.token_arrivals(), s.text_arrivals()
            if turn and tokens_seen:
                first_token.append(tokens_seen[0] - s.sent)
            if turn and texts:
                first_text.append(texts[0] - s.sent)
            silent += not texts
            tokenless += not tokens_seen
            conversation += s.text
            if label == "prefix":
                streams.append(s)
        figures[f"{label}_first_turn_ms"] = ms(ttft[:1], 50)
        for name, times in (("ttft", ttft[1:]), ("first_token", first_token), ("first_text", first_text)):
            figures[f"{label}_{name}_ms_p50"] = ms(times, 50)
            figures[f"{label}_{name}_ms_p95"] = ms(times, 95)
    if silent:  # a server sends a chunk with text: the first chunk of these was their last
        print(f"orcd bench server: {server.url} streamed no text for {silent} of {2 * turns} prefix "
              f"turns ({tokenless} without a token chunk either), timed to their first chunk, the "
              f"end of the stream where there was no other; first token and first text leave them "
              f"out (--trace times orcd's first id: client sent -> engine_first_id)", file=sys.stderr)
    return figures, streams


def wait_idle(server: Server) -> None:
    """Until the server reports no job (orcd's `busy`); a server without it gets 200 ms."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = server.get_json("/health")
        if "busy" not in health:
            time.sleep(0.2)
            return
        if not health["busy"]:
            return
        time.sleep(0.001)


def measure(server: Server, args, is_orcd: bool = True) -> tuple[dict, list, list]:
    """The figures, the timed completions' streams and the prefix scenario's turns' streams
    (turn 1, then the cached turns)."""
    server.complete({"prompt": PROMPTS[0], "max_tokens": 4, "temperature": 0})  # warm-up
    figures, streams = first_text(server, args.runs, args.tokens)
    figures.update(first_text_kept_alive(server, args.runs, args.tokens))
    figures.update(health_during_decode(server, args.health_requests))
    if is_orcd:
        figures.update(cancel_latency(server, args.runs))
    turns = []
    if args.prefix_turns:
        prefix, turns = prefix_cache(server, args.prefix_turns)
        figures.update(prefix)
    return figures, streams, turns


ROWS = (("time to first text", "ttft_ms_p50", "ttft_ms_p95", "ms p50 / p95"),
        ("  on a kept-alive connection", "ttft_kept_ms_p50", "ttft_kept_ms_p95", "ms p50 / p95"),
        ("time to first token chunk", "first_token_ms_p50", "first_token_ms_p95", "ms p50 / p95"),
        ("inter-token time", "inter_token_ms_p50", "inter_token_ms_p95", "ms p50 / p95"),
        ("streamed tokens/s", "tokens_per_s", None, "median"),
        ("/health during decode", "health_ms_p50", "health_ms_p99", "ms p50 / p99"),
        ("cancel -> terminal frame", "cancel_ms_p50", "cancel_ms_max", "ms p50 / max"),
        ("prefix: first turn", "prefix_first_turn_ms", None, "ms"),
        ("prefix: later turns, cached, 1st chunk", "prefix_ttft_ms_p50", "prefix_ttft_ms_p95", "ms p50 / p95"),
        ("  first token chunk", "prefix_first_token_ms_p50", "prefix_first_token_ms_p95", "ms p50 / p95"),
        ("  first text", "prefix_first_text_ms_p50", "prefix_first_text_ms_p95", "ms p50 / p95"),
        ("prefix: later turns, no cache, 1st chunk", "prefix_nocache_ttft_ms_p50", "prefix_nocache_ttft_ms_p95",
         "ms p50 / p95"),
        ("  first token chunk", "prefix_nocache_first_token_ms_p50", "prefix_nocache_first_token_ms_p95",
         "ms p50 / p95"),
        ("  first text", "prefix_nocache_first_text_ms_p50", "prefix_nocache_first_text_ms_p95",
         "ms p50 / p95"))


def number(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 100 else f"{v:,.1f}"


def cell(figures: dict, a: str, b: str | None) -> str:
    return number(figures.get(a)) if b is None else f"{number(figures.get(a))} / {number(figures.get(b))}"


def table(figures: dict, health: dict, peer: dict | None, peer_url: str | None) -> str:
    head = f"{health.get('model')} ({health.get('arch')}, {health.get('quant_kind')}) on " \
           f"{health.get('device')} {health.get('gpu_name') or ''}".rstrip()
    widths = (39, 22, 22)
    lines = [head, f"{'figure':{widths[0]}s} {'orcd':>{widths[1]}s}"
             + (f" {'peer':>{widths[2]}s} {'orcd/peer':>10s}" if peer is not None else "") + "  unit"]
    for name, a, b, unit in ROWS:
        line = f"{name:{widths[0]}s} {cell(figures, a, b):>{widths[1]}s}"
        if peer is not None:
            ratio = (figures[a] / peer[a]) if figures.get(a) and peer.get(a) else None
            line += f" {cell(peer, a, b):>{widths[2]}s} {'-' if ratio is None else f'{ratio:.2f}':>10s}"
        lines.append(line + f"  {unit}")
    if peer is not None:
        lines.append(f"peer: {peer_url}")
    return "\n".join(lines)


FIRST_ID = "engine_first_id"


def trace_breakdown(log_path: str, streams: list) -> dict:
    """Median µs of each hand-off of the first token, client send to client read (of its first
    text, or first chunk where none had text), over the streams whose trace the worker narrated."""
    traces = {}
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "trace":
                    traces[event["job_id"]] = event
    steps: dict[str, list[float]] = {}
    for s in streams:
        event = traces.get(s.id)
        if event is None:
            continue
        start_us = event["received_ns"] / 1000.0
        points = [("client sent", s.sent * 1e6)]
        points += [(stage, start_us + event["stages_us"][stage]) for stage in STAGES
                   if stage in event["stages_us"]]
        read = s.text_arrivals() or s.arrivals  # a turn that streamed no text: its first chunk
        if not read:
            continue
        points.append(("client read", read[0] * 1e6))
        for (a, ta), (b, tb) in zip(points, points[1:]):
            steps.setdefault(f"{a} -> {b}", []).append(tb - ta)
        steps.setdefault("total", []).append(points[-1][1] - points[0][1])
        marks = event["stages_us"]
        if FIRST_ID in marks:  # the first token as the worker saw it, whether or not it had text
            steps.setdefault(f"(client sent -> {FIRST_ID}, first token)", []).append(
                start_us + marks[FIRST_ID] - s.sent * 1e6)
        for stage, since in BESIDE.items():
            if stage in marks and since in marks:
                steps.setdefault(f"({since} -> {stage}, beside)", []).append(marks[stage] - marks[since])
    return {name: round(float(np.median(v)), 1) for name, v in steps.items()}


def run(args) -> int:
    sys.setswitchinterval(0.0005)  # the long stream's reader thread must not delay a timed read
    if args.url:
        context = contextlib.nullcontext((Server(args.url), None))
    else:
        context = started_worker(args.model, args.device, *(["--trace"] if args.trace else []))
    with context as (server, log_path):
        health = server.get_json("/health")
        figures, streams, turns = measure(server, args)
        traced = log_path and args.trace
        if traced:
            time.sleep(0.2)  # the last trace line is written once its response has been sent
        breakdown = trace_breakdown(log_path, streams) if traced else None
        first_turn = trace_breakdown(log_path, turns[:1]) if traced and turns else None
        prefix_breakdown = trace_breakdown(log_path, turns[1:]) if traced and turns[1:] else None
    peer = None
    if args.peer:
        peer, _, _ = measure(Server(args.peer), args, is_orcd=False)
    if args.json:
        print(json.dumps({"worker": health, "figures": figures, "peer": peer, "trace_us": breakdown,
                          "prefix_first_trace_us": first_turn, "prefix_trace_us": prefix_breakdown},
                         indent=1))
        return 0
    print(table(figures, health, peer, args.peer))
    for title, steps in (("first token, hand-off by hand-off (µs, median of the timed completions)",
                          breakdown),
                         ("prefix turn 1, hand-off by hand-off (µs, one request)", first_turn),
                         ("cached prefix turns 2.., hand-off by hand-off (µs, median)",
                          prefix_breakdown)):
        if steps:
            print(f"\n{title}")
            for name, us in steps.items():
                print(f"  {name:44s} {us:10.1f}")
    return 0
