"""A real `orcd serve` subprocess on a free loopback port, and an SSE client for it."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

START_TIMEOUT_SEC = 120.0  # SmolLM2 on the NumPy engine loads in seconds; CI cores are slow
STOP_TIMEOUT_SEC = 5.0     # SPEC §2: exit within 5 s of /shutdown or SIGTERM
# OpenBLAS threads spin on an oversubscribed CI machine (the tests and the worker share two
# cores): one thread decodes SmolLM2 on the NumPy engine about 20x faster there.
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    def __init__(self, model: str, device: str, *extra: str, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = tempfile.NamedTemporaryFile("w+", prefix="orcd-serve-", suffix=".log", delete=False)
        self.argv = [sys.executable, "-m", "orcd.cli", "serve", "--model", model, "--device", device,
                     "--host", "127.0.0.1", "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.log_file,
                                     env={**WORKER_ENV, **os.environ, **(env or {})})
        self.http = httpx.Client(base_url=self.base, timeout=60.0)

    def wait_ready(self, timeout: float = START_TIMEOUT_SEC) -> "WorkerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"orcd serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.http.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"orcd serve was not ready in {timeout} s:\n{self.log()}")

    def wait_exit(self, timeout: float = STOP_TIMEOUT_SEC) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        return pathlib.Path(self.log_file.name).read_text(errors="replace")

    def events(self) -> list[dict]:
        """The narration lines (JSON) of the log."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SEC * 2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        os.unlink(self.log_file.name)

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.http.get("/health").json()["busy"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker is still busy after {timeout} s")
            time.sleep(0.02)


def sse_events(lines):
    """(event, data) pairs from an iterator of SSE lines."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, json.loads(line[len("data: "):])
            event = None


class Stream:
    """One /execute call read event by event; `events` holds what has arrived."""

    def __init__(self, worker: WorkerProcess, body: dict):
        self.client = httpx.Client(base_url=worker.base, timeout=60.0)
        self.response = self.client.send(self.client.build_request("POST", "/execute", json=body),
                                         stream=True)
        self.status = self.response.status_code
        self.events: list[tuple[str, dict]] = []
        self._iter = sse_events(self.response.iter_lines()) if self.status == 200 else iter(())

    def next(self) -> tuple[str, dict]:
        item = next(self._iter)
        self.events.append(item)
        return item

    def until(self, kind: str) -> tuple[str, dict]:
        while True:
            item = self.next()
            if item[0] == kind:
                return item

    def finish(self) -> list[tuple[str, dict]]:
        for item in self._iter:
            self.events.append(item)
        self.close()
        return self.events

    def close(self) -> None:
        self.response.close()
        self.client.close()

    @property
    def text(self) -> str:
        return "".join(d["t"] for k, d in self.events if k == "token")

    @property
    def terminal(self) -> tuple[str, dict]:
        return self.events[-1]
