"""The client of `orcd bench server`: stdlib HTTP on loopback speaking OpenAI's streaming
`/v1/completions`, which orcd and llama-server both serve, so one client times both."""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

READY_TIMEOUT_SEC = 300.0


@dataclasses.dataclass
class Streamed:
    """One streamed completion: when it was sent, and each chunk's arrival, text and
    finish_reason."""
    id: str
    sent: float
    arrivals: list[float]
    texts: list[str]
    finishes: list[str | None]

    @property
    def finish_reason(self) -> str | None:
        """The last finish_reason a chunk gave."""
        return next((f for f in reversed(self.finishes) if f), None)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def text_arrivals(self) -> list[float]:
        return [t for t, s in zip(self.arrivals, self.texts) if s]

    def token_arrivals(self) -> list[float]:
        """The chunks that carry a generated token: those with text, and those before the
        last that have none (a server that streams a token whose text is empty, as
        llama-server does); not the closing chunk with only a finish_reason. orcd sends no
        chunk for a token without text (SPEC §2), so its tokens are its text chunks."""
        return [t for t, s, f in zip(self.arrivals, self.texts, self.finishes) if s or f is None]


class Server:
    """An HTTP server at host:port; one connection per concurrent stream."""

    def __init__(self, url: str):
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        self.url, self.host, self.port = url, host, int(port)

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def post(self, conn, path: str, body: dict | bytes) -> http.client.HTTPResponse:
        """POST body (a dict, or its JSON already encoded) and wait for the response's head."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"Content-Type": "application/json"})
        return conn.getresponse()

    def get_json(self, path: str) -> dict:
        conn = self.connect()
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def complete(self, body: dict, conn: http.client.HTTPConnection | None = None) -> Streamed:
        """POST /v1/completions with stream on; read to the end. On `conn`, kept alive for the
        next request, else on a connection of its own (opened, and the body encoded, before the
        clock starts)."""
        own = conn is None
        conn = conn or self.connect()
        data = json.dumps({**body, "stream": True}).encode()  # the client's work, before the clock
        try:
            sent = time.perf_counter()
            response = self.post(conn, "/v1/completions", data)
            if response.status != 200:
                raise SystemExit(f"orcd bench server: {self.url}/v1/completions answered HTTP "
                                 f"{response.status}: {response.read()[:500]!r}")
            streamed = read_stream(response, sent)
            response.read()  # the body's end: the connection can take the next request
            return streamed
        finally:
            if own:
                conn.close()


def read_stream(response: http.client.HTTPResponse, sent: float) -> Streamed:
    out = Streamed("", sent, [], [], [])
    while line := response.readline():
        if not line.startswith(b"data: "):
            continue
        arrived = time.perf_counter()
        payload = line[6:].strip()
        if payload == b"[DONE]":
            break
        chunk = json.loads(payload)
        if "error" in chunk:
            raise SystemExit(f"orcd bench server: the stream failed: {chunk['error']}")
        out.id = out.id or chunk.get("id", "")
        for choice in chunk.get("choices", []):
            out.arrivals.append(arrived)
            out.texts.append(choice.get("text") or "")
            out.finishes.append(choice.get("finish_reason"))
    return out


class Background:
    """A long completion read in a thread, in large recv() calls, so the client spends little
    time (and GIL) on it while it times something else; .done is set when it has ended."""

    def __init__(self, server: Server, body: dict):
        self.conn = server.connect()
        self.conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}),
                          {"Content-Type": "application/json"})
        self.response = self.conn.getresponse()
        self.first = self.response.readline()  # blocks until the stream has begun
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        tail = b""
        try:
            while chunk := self.response.read1(1 << 20):
                tail = (tail + chunk)[-64:]
                if b"[DONE]" in tail:
                    break
        except (OSError, ValueError, http.client.HTTPException):
            pass  # close() cut the connection
        finally:
            self.done.set()

    def close(self) -> None:
        """Cut the connection (the server stops the job) and wait for the reader."""
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)
        self.conn.close()


@contextlib.contextmanager
def started_worker(model: str | None, device: str, *extra: str, launcher=("-m", "orcd.cli")):
    """`orcd serve` on a free loopback port, yielded as (Server, path of its log); stopped
    (SIGTERM) afterwards. `launcher`: the Python arguments before `serve`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, *launcher, "serve", "--device", device, "--port", str(port), *extra]
    if model:
        argv += ["--model", model]
    with tempfile.NamedTemporaryFile("w+", prefix="orcd-bench-", suffix=".log") as log:
        proc = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL, env=dict(os.environ))
        try:
            wait_ready(proc, port, log)
            yield Server(f"http://127.0.0.1:{port}"), log.name
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
