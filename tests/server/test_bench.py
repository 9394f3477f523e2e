"""`orcd bench server` runs end to end against a real worker (its figures are not judged here)."""
import argparse
import contextlib
import http.server
import json
import threading
import time

from orcd.bench import server as bench
from orcd.bench.http_client import Server, started_worker


def test_bench_server_measures_every_figure(tiny_model, monkeypatch, capsys):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(bench, "SYSTEM_PROMPT", bench.SYSTEM_PROMPT[:1500])  # the tiny vocabulary
    args = argparse.Namespace(runs=2, tokens=4, health_requests=20, prefix_turns=3)
    with started_worker(str(tiny_model), "cpu", "--trace") as (server, log_path):
        figures, streams, turns = bench.measure(server, args)
        breakdown = bench.trace_breakdown(log_path, streams)
        first_turn = bench.trace_breakdown(log_path, turns[:1])
        prefix_breakdown = bench.trace_breakdown(log_path, turns[1:])
    for name in ("ttft_ms_p50", "ttft_kept_ms_p50", "first_token_ms_p50", "inter_token_ms_p95", "health_ms_p99",
                 "cancel_ms_max", "prefix_ttft_ms_p50", "prefix_first_token_ms_p50", "prefix_first_text_ms_p50",
                 "prefix_nocache_ttft_ms_p50", "prefix_nocache_first_token_ms_p50"):
        assert figures[name] >= 0.0, figures
    assert figures["health_requests"] > 0
    assert "received -> handler" in breakdown and breakdown["total"] > 0
    assert "handler -> parsed" in breakdown and "parsed -> tokenize_start" in breakdown
    assert len(turns) == 3 and prefix_breakdown["total"] > 0  # turn 1, then the cached turns 2 and 3
    assert first_turn["total"] > 0 and "tokenize_start -> tokenized" in first_turn
    assert prefix_breakdown["(client sent -> engine_first_id, first token)"] > 0
    print(bench.table(figures, {"model": "tiny"}, figures, "http://peer"))
    assert "orcd/peer" in capsys.readouterr().out


class _ClosingPeer(http.server.BaseHTTPRequestHandler):
    """A server that streams one completion chunk and closes the connection after it, as
    llama-server does after a stream."""
    protocol_version = "HTTP/1.0"
    text = "hi"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        chunk = json.dumps({"id": "c", "choices": [{"text": self.text, "finish_reason": "length"}]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(f"data: {chunk}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def peer_of(handler):
    """A Server for a stand-in peer answering with `handler` on a free port, while in use."""
    peer = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        yield Server(f"http://127.0.0.1:{peer.server_address[1]}")
    finally:
        peer.shutdown()
        peer.server_close()


def test_a_peer_that_closes_streams_gets_no_kept_alive_figure():
    with peer_of(_ClosingPeer) as server:
        assert bench.first_text(server, 2, 4)[0]["ttft_ms_p50"] >= 0.0
        assert bench.first_text_kept_alive(server, 2, 4) == {"ttft_kept_ms_p50": None,
                                                             "ttft_kept_ms_p95": None}


def test_a_completion_without_token_chunks_is_timed_to_its_first_id_by_the_trace(tiny_model, monkeypatch):
    """orcd sends no chunk for a token without text (SPEC §2): a completion whose text is all
    held back, here by a stop string that matches all of it, streams only its closing chunk,
    and the worker's trace still says when its first id came."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    with started_worker(str(tiny_model), "cpu", "--trace") as (server, log_path):
        body = {"prompt": bench.PROMPTS[0], "max_tokens": 4, "temperature": 0}
        said = server.complete(body).text
        held = server.complete({**body, "stop": [said]})
        time.sleep(0.2)  # the trace line is written once the response has been sent
        steps = bench.trace_breakdown(log_path, [held])
    assert said and held.finish_reason == "stop" and held.token_arrivals() == [] and held.arrivals
    assert steps["(client sent -> engine_first_id, first token)"] > 0
    assert "engine_first_id -> client read" in steps  # no first_event: no token event was sent


class _EmptyTokenPeer(_ClosingPeer):
    """Streams a token whose text is empty, then the closing chunk, as llama-server does with
    a synthetic model's ids."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        chunks = [{"id": "c", "choices": [{"text": "", "finish_reason": None}]},
                  {"id": "c", "choices": [{"text": "", "finish_reason": "length"}]}]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n")


def test_a_token_without_text_is_timed_as_the_first_token_not_as_text(capsys):
    with peer_of(_EmptyTokenPeer) as server:
        figures, _ = bench.first_text(server, 2, 4)
        assert figures["first_token_ms_p50"] >= 0.0 and figures["ttft_ms_p50"] is None
        prefix, turns = bench.prefix_cache(server, 2)
        assert [len(t.token_arrivals()) for t in turns] == [1, 1]
        assert prefix["prefix_first_token_ms_p50"] >= 0.0 and prefix["prefix_ttft_ms_p50"] >= 0.0
        assert prefix["prefix_first_text_ms_p50"] is None
        assert "(0 without a token chunk either)" in capsys.readouterr().err


class _SilentPeer(_ClosingPeer):
    """Its completions' chunks hold no text, as a synthetic model's ids may decode to nothing."""
    text = ""


def test_completions_that_stream_no_text_are_named_not_timed(capsys):
    with peer_of(_SilentPeer) as server:
        figures, streams = bench.first_text(server, 2, 4)
        assert streams == [] and figures["ttft_ms_p50"] is None and figures["tokens_per_s"] is None
        assert "streamed no text for 2 of 2 completions" in capsys.readouterr().err
        prefix, turns = bench.prefix_cache(server, 2)
        assert len(turns) == 2 and all(t.arrivals and not t.text_arrivals() for t in turns)
        assert prefix["prefix_ttft_ms_p50"] >= 0.0 and prefix["prefix_first_token_ms_p50"] is None
        assert "streamed no text for 4 of 4 prefix turns (4 without a token chunk" in capsys.readouterr().err
