"""orcd/server/keepalive.py: hypercorn's worker over the real app with the idle timer in place
of its idle task. A connection kept alive between requests stays open, an idle one closes after
the keep-alive timeout, and the worker's end closes an idle one at once."""
import asyncio
import io
import socket

from hypercorn.asyncio.run import worker_serve
from hypercorn.utils import wrap_app

from orcd.logging import Narrator
from orcd.server import http_layer
from orcd.server.run import ServeOptions, hypercorn_config

GET = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
KEEP_ALIVE_SEC = 0.3


async def serving(served, check, keep_alive_sec: float = KEEP_ALIVE_SEC, graceful_sec: float = 5.0) -> float:
    """check(host, port) against hypercorn's worker over served's app; then the worker is
    stopped: how long its end took (it waits up to graceful_sec for open connections)."""
    narrator = Narrator("w", "m", 0, stream=io.StringIO())
    config = hypercorn_config(ServeOptions(model="m", worker_id="w", port=0), narrator)
    config.keep_alive_timeout, config.graceful_timeout = keep_alive_sec, graceful_sec
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    host, port = sockets.insecure_sockets[0].getsockname()[:2]
    http_layer.install(served.state)
    stop = asyncio.Event()
    worker = asyncio.create_task(worker_serve(wrap_app(served.app, config.wsgi_max_body_size, "asgi"),
                                              config, sockets=sockets, shutdown_trigger=stop.wait))
    try:
        await check(host, port)
    finally:
        stop.set()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(worker, 10)
    return asyncio.get_running_loop().time() - started


async def answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return head + await reader.readexactly(length)


def test_a_kept_alive_connection_serves_requests_then_closes_when_idle(serve):
    async def check(s):
        async def client(host, port):
            reader, writer = await asyncio.open_connection(host, port)
            for k in range(3):
                if k:
                    await asyncio.sleep(KEEP_ALIVE_SEC * 2 / 3)  # idle, less than the timeout
                writer.write(GET)
                assert (await answer(reader)).startswith(b"HTTP/1.1 200 ")
            idle_from = asyncio.get_running_loop().time()
            # timed by the loop's timer: no task of hypercorn's waits out the idle time
            assert not [t for t in asyncio.all_tasks() if "_idle_timeout" in repr(t.get_coro())]
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the worker
            assert KEEP_ALIVE_SEC * 0.9 <= asyncio.get_running_loop().time() - idle_from
            writer.close()
        await serving(s, client)
    serve(check)


def test_the_workers_end_closes_an_idle_connection_at_once(serve):
    async def check(s):
        held = {}

        async def client(host, port):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(GET)
            await answer(reader)
            held.update(reader=reader, writer=writer)

        # a worker that left the idle connection open would wait for it the whole graceful
        # time (the keep-alive timeout is longer)
        took = await serving(s, client, keep_alive_sec=60, graceful_sec=5)
        assert await asyncio.wait_for(held["reader"].read(), 5) == b""
        assert took < 4
        held["writer"].close()
    serve(check)


def test_a_connection_never_sent_a_request_closes_when_idle(serve):
    async def check(s):
        async def client(host, port):
            sock = socket.create_connection((host, port))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            assert await asyncio.wait_for(loop.sock_recv(sock, 10), 5) == b""
            sock.close()
        await serving(s, client)
    serve(check)
