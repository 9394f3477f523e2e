"""orcd/server/http_layer.py's GET /health: a plain keep-alive request is answered where
hypercorn reads it, with the bytes hypercorn's own path sends; every other request, and the
connection after the answer, go on as before. Over a real worker's sockets, and through
hypercorn's H11Protocol in-process, where the app can be seen not to run."""
import asyncio
import http.client
import io
import json
import socket
import time

import pytest
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from orcd.bench.http_client import started_worker
from orcd.logging import Narrator
from orcd.server import http_layer
from orcd.server.run import ServeOptions, hypercorn_config

KEY = "k-test"
GET = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n"


@pytest.mark.parametrize("request_bytes, plain", [
    (GET, True),
    (b"GET /health HTTP/1.1\r\nhost:127.0.0.1 \r\nConnection: Keep-Alive\r\nUser-Agent: a b\r\n\r\n", True),
    (b"GET /health HTTP/1.1\r\nHost: ..\r\n\r\n", True),  # /health never looked at the Host
    (b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n", True),  # nor the key
    (GET[:-2], False),  # the head is not complete
    (GET + GET, False),  # pipelined
    (b"GET /health HTTP/1.1\r\n\r\n", False),  # no Host: h11's 400
    (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", False),
    (b"GET /health HTTP/1.0\r\n\r\n", False),
    (b"GET /health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (b"get /health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (b"GET /health HTTP/1.1\nHost: x\n\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", False),  # a folded line
    (b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: \xe9\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", False),
])
def test_which_reads_are_plain_health_gets(request_bytes, plain):
    assert http_layer.plain_health_get(request_bytes) is plain


class Wire:
    """hypercorn's H11Protocol over the app, the handle the worker installs, and a bytearray
    for the socket; `calls` counts the requests that reached the app, `closed` the times the
    protocol told the TCP server to close the connection."""

    def __init__(self, served, task_group):
        self.written = bytearray()
        self.calls = 0
        self.closed = 0
        self.idle = asyncio.Event()

        async def app(scope, receive, send):
            self.calls += 1
            await served.app(scope, receive, send)

        async def send(event):
            if isinstance(event, RawData):
                self.written += event.data
            elif isinstance(event, Updated) and event.idle:
                self.idle.set()
            elif isinstance(event, Closed):
                self.closed += 1

        narrator = Narrator("w", "m", 0, stream=io.StringIO())
        config = hypercorn_config(ServeOptions(model="m", worker_id="w"), narrator)
        self.protocol = H11Protocol(wrap_app(app, config.wsgi_max_body_size, "asgi"), config,
                                    WorkerContext(None), task_group, ConnectionState({}), False,
                                    ("127.0.0.1", 50000), ("127.0.0.1", 8080), send)
        self.handle = http_layer.handling(served.state)

    async def receive(self, data: bytes) -> None:
        await self.handle(self.protocol, RawData(data=data))

    async def client_closes(self) -> None:
        """The client's end of the bytes, as hypercorn's reader hands it over: an empty read,
        then Closed once the reader has stopped."""
        await self.receive(b"")
        await self.handle(self.protocol, Closed())

    async def request(self, data: bytes) -> bytes:
        """The answer, once the connection is idle again (its keep-alive timer restarted)."""
        self.idle.clear()
        start = len(self.written)
        await self.receive(data)
        await asyncio.wait_for(self.idle.wait(), 30)
        return bytes(self.written[start:])


def test_a_plain_get_never_reaches_the_app_and_the_connection_goes_on(serve):
    body = b'{"job_id": "j-1"}'
    cancel = (b"POST /cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s")

    async def check(s):
        async with TaskGroup(asyncio.get_running_loop()) as group:
            wire = Wire(s, group)
            for _ in range(3):
                head, _, answer = (await wire.request(GET)).partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 \r\n") and json.loads(answer)["worker_id"] == "w-test"
            assert wire.calls == 0 and wire.protocol.keep_alive_requests == 3
            answer = await wire.request(cancel % (len(body), body))
            assert answer.startswith(b"HTTP/1.1 202 ") and wire.calls == 1
            assert (await wire.request(GET)).startswith(b"HTTP/1.1 200 ") and wire.calls == 1
            await wire.receive(GET[:20])  # a request in two reads takes hypercorn's path
            assert (await wire.request(GET[20:])).startswith(b"HTTP/1.1 200 ") and wire.calls == 2
    serve(check)


@pytest.mark.parametrize("last_request", [GET, b"GET /health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", None])
def test_a_connection_its_client_closed_between_requests_is_closed_at_once(serve, last_request):
    """Not left, with its tasks, for hypercorn's keep-alive timer to tear down seconds later:
    after the fast path's answer, after hypercorn's, and with no request at all."""
    async def check(s):
        async with TaskGroup(asyncio.get_running_loop()) as group:
            wire = Wire(s, group)
            if last_request is not None:
                assert (await wire.request(last_request)).startswith(b"HTTP/1.1 200 ")
            assert wire.closed == 0
            await wire.client_closes()
            assert wire.closed == 1
    serve(check)


def test_a_request_cut_short_is_answered_and_closed_by_hypercorn_alone(serve):
    """A client that leaves before its body is complete: hypercorn answers 400 and closes the
    connection, as before; the handle adds no close of its own."""
    async def check(s):
        async with TaskGroup(asyncio.get_running_loop()) as group:
            wire = Wire(s, group)
            await wire.receive(b"POST /cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 17\r\n\r\n")  # its body never comes
            await wire.client_closes()
            assert wire.written.startswith(b"HTTP/1.1 400 ") and wire.closed == 1
    serve(check)


@pytest.fixture(scope="module")
def worker(tiny_model):
    with started_worker(str(tiny_model), "cpu", "--api-key", KEY) as (server, _):
        yield server


class Raw:
    """One connection to the worker, written as raw bytes and read answer by answer."""

    def __init__(self, server):
        self.sock = socket.create_connection((server.host, server.port), timeout=30)
        self.file = self.sock.makefile("rb")

    def answer(self, has_body: bool = True) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        """(status line, [(lower-case name, value)], body) of the next answer."""
        status = self.file.readline()
        headers = []
        while (line := self.file.readline()) != b"\r\n":
            name, _, value = line.rstrip(b"\r\n").partition(b":")
            headers.append((name.lower(), value.strip()))
        length = int(dict(headers).get(b"content-length", 0)) if has_body else 0
        return status, headers, self.file.read(length)

    def closed(self) -> bool:
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def without_uptime(body: bytes) -> list:
    health = json.loads(body)
    health.pop("uptime_seconds")
    return list(health.items())


def test_the_answer_is_the_one_hypercorn_writes_for_health_first(worker):
    raw = Raw(worker)
    raw.sock.sendall(GET)
    fast = raw.answer()
    raw.sock.sendall(b"GET /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # hypercorn's path
    slow = raw.answer()
    raw.close()
    assert fast[0] == slow[0] == b"HTTP/1.1 200 \r\n"
    assert [name for name, _ in fast[1]] == [name for name, _ in slow[1]] == \
        [b"content-type", b"content-length", b"date"]
    assert dict(fast[1])[b"content-type"] == dict(slow[1])[b"content-type"] == b"application/json"
    assert int(dict(fast[1])[b"content-length"]) == len(fast[2])
    assert without_uptime(fast[2]) == without_uptime(slow[2])  # the same fields in the same order


def test_gets_then_a_completion_on_one_kept_alive_connection(worker):
    conn = http.client.HTTPConnection(worker.host, worker.port, timeout=60)
    for _ in range(10):
        conn.request("GET", "/health")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["status"] == "healthy"
    sock = conn.sock
    conn.request("POST", "/v1/completions", json.dumps({"prompt": "Hi", "max_tokens": 2, "temperature": 0}),
                 {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["usage"]["completion_tokens"] >= 1
    conn.request("GET", "/health")
    assert conn.getresponse().read() and conn.sock is sock
    conn.close()


def test_pipelined_and_split_requests_are_answered_in_order(worker):
    raw = Raw(worker)
    models = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % KEY.encode()
    raw.sock.sendall(GET + models + GET)
    first, second, third = raw.answer(), raw.answer(), raw.answer()
    assert json.loads(first[2])["status"] == json.loads(third[2])["status"] == "healthy"
    assert json.loads(second[2])["object"] == "list"
    raw.sock.sendall(GET[:25])
    time.sleep(0.05)  # the rest comes in another read
    raw.sock.sendall(GET[25:])
    assert json.loads(raw.answer()[2])["status"] == "healthy"
    raw.sock.sendall(GET)
    assert raw.answer()[0] == b"HTTP/1.1 200 \r\n"
    raw.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.0\r\n\r\n",
])
def test_a_connection_asked_to_close_is_closed_after_the_answer(worker, request_bytes):
    raw = Raw(worker)
    raw.sock.sendall(request_bytes)
    status, headers, body = raw.answer()
    assert status == b"HTTP/1.1 200 \r\n" and (b"connection", b"close") in headers and json.loads(body)
    assert raw.closed()
    raw.close()


def test_the_worker_closes_its_side_when_the_client_has_closed_its_own(worker):
    """A client that half-closes a kept-alive connection reads the worker's close well before
    hypercorn's keep-alive timer would have sent it."""
    raw = Raw(worker)
    raw.sock.sendall(GET)
    assert raw.answer()[0] == b"HTTP/1.1 200 \r\n"
    raw.sock.shutdown(socket.SHUT_WR)
    keep_alive = hypercorn_config(ServeOptions(model="m", worker_id="w"), Narrator("w", "m", 0)).keep_alive_timeout
    raw.sock.settimeout(keep_alive / 2)
    assert raw.closed()
    raw.close()


def test_hypercorn_s_keep_alive_limit_still_closes_its_connection(worker):
    """hypercorn answers a connection's 1000th request with Connection: close."""
    raw = Raw(worker)
    for n in range(1, 1001):
        raw.sock.sendall(GET)
        _, headers, _ = raw.answer()
        assert ((b"connection", b"close") in headers) == (n == 1000)
    assert raw.closed()
    raw.close()


def test_the_host_and_key_rules_are_those_of_before(worker):
    raw = Raw(worker)
    raw.sock.sendall(b"GET /health HTTP/1.1\r\nHost: ..\r\n\r\n")  # not the router's: no Host check
    assert raw.answer()[0] == b"HTTP/1.1 200 \r\n"
    raw.sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: ..\r\nAuthorization: Bearer %s\r\n\r\n" % KEY.encode())
    status, _, body = raw.answer()
    assert status == b"HTTP/1.1 400 \r\n" and json.loads(body)["error"]["code"] == "INVALID_REQUEST"
    raw.sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.answer()[0] == b"HTTP/1.1 401 \r\n"
    raw.sock.sendall(GET)  # open without a key
    assert raw.answer()[0] == b"HTTP/1.1 200 \r\n"
    raw.close()


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /health HTTP/1.1\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\nHost: x\n\n", 200),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 200),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200),
])
def test_other_variants_get_hypercorn_s_answers(worker, request_bytes, status):
    raw = Raw(worker)
    raw.sock.sendall(request_bytes)
    got, headers, body = raw.answer()
    assert got == b"HTTP/1.1 %d \r\n" % status
    if status == 400:
        assert json.loads(body)["code"] == "INVALID_REQUEST" and raw.closed()
    else:
        assert json.loads(body)["status"] == "healthy"
        raw.sock.sendall(GET)
        assert raw.answer()[0] == b"HTTP/1.1 200 \r\n"
    raw.close()


def test_head_and_expect_take_hypercorn_s_path(worker):
    raw = Raw(worker)
    raw.sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.answer(has_body=False)[0] == b"HTTP/1.1 200 \r\n"
    raw.sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
    assert raw.answer(has_body=False)[0] == b"HTTP/1.1 100 \r\n"
    status, _, body = raw.answer()
    assert status == b"HTTP/1.1 200 \r\n" and json.loads(body)["status"] == "healthy"
    raw.close()
