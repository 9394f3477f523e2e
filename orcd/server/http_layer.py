"""Answers that hypercorn gives itself, before the app sees a request.

Errors: broken HTTP/1.1 framing (400), headers over its limit (431), an unsupported transfer
coding (501), an app that ended without answering (500). Hypercorn sends them with an empty
body; the contract (SPEC §2) wants `{"code", "message", "retriable"}` on every error, so its
two error writers are replaced by ones that add that body. They are hypercorn's only hook for
these answers.

GET /health: an orchestrator's probe on a kept-alive connection. Through hypercorn it costs
h11's parsing of the request, a stream and a task for the app, h11's writing of the response
and the keep-alive cycle: event-loop time that a probe during decode waits for and adds to
(SPEC §2 wants p99 under 1 ms; a round trip in one process on the 2-core dev box: 215 µs that
way, 67 µs this way, 32 µs for fixed bytes). Where its bytes arrive (H11Protocol.handle), a
read that is exactly one plain keep-alive GET /health, on a connection between requests, is
answered there with the bytes hypercorn would have written for health_first's answer; h11
never sees that request, so the connection is as it was, ready for the next. Anything else
takes hypercorn's path unchanged.

The keep-alive timer: hypercorn keeps one task per connection that closes it when idle too
long, and on every request's head it cancels that task and awaits its end: passes of the event
loop before the request reaches the app (17-38 µs on the 2-core dev box), on the path to the
first token. IdleTask cancels it without waiting; the cancelled task ends on its own, and a
close already under way (shielded by hypercorn) goes on, as before.

A connection whose client has closed it between requests: hypercorn's reader ends and hands
the protocol `Closed`, which, with no request under way, does nothing; the connection, its tasks
and their objects then wait for the keep-alive timer (5 s) and are torn down in the middle of
whatever the worker does then (a /health probe, another request's first token), and count
meanwhile towards the next young-generation collection (a client that opens a connection per
request: 92 objects a request, 48 when the connection is closed at once, the cycles hypercorn
and werkzeug leave). closing_when_done closes it at once, as hypercorn does itself when a
request cycle cannot go on (H11Protocol._maybe_recycle).
"""
from __future__ import annotations

import json
import re
from itertools import chain

import h11
from hypercorn.asyncio import tcp_server
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream

from orcd.errors import InternalError, InvalidRequest, OrcdError
from orcd.server import health

WHY = {
    400: "the request is not valid HTTP/1.1",
    404: "no such server name",
    431: "the request's headers are larger than the worker accepts (16 KiB)",
    501: "the request uses a transfer coding the worker does not implement (only chunked)",
}


def error_body(status: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    error: OrcdError = (InternalError("the worker failed to answer; see its log") if status == 500
                        else InvalidRequest(WHY.get(status, "the request cannot be served")))
    body = json.dumps(error.to_dict()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    return headers, body


async def _h11_error(self: H11Protocol, status_code: int) -> None:
    headers, body = error_body(status_code)
    await self._send_h11_event(h11.Response(
        status_code=status_code, headers=list(chain(headers, self.config.response_headers("h11")))))
    await self._send_h11_event(h11.Data(data=body))
    await self._send_h11_event(h11.EndOfMessage())


async def _stream_error(self: HTTPStream, status_code: int) -> None:
    headers, body = error_body(status_code)
    await self.send(Response(stream_id=self.stream_id, headers=headers, status_code=status_code))
    await self.send(Body(stream_id=self.stream_id, data=body))
    await self.send(EndBody(stream_id=self.stream_id))
    self.state = ASGIHTTPState.CLOSED


HYPERCORN_HANDLE = H11Protocol.handle
# One GET /health, HTTP/1.1, whole: header lines in the part of h11's grammar that reads the
# same byte for byte (a token, a colon, a value of visible ASCII, CRLF), nothing after the
# blank line. A request split over two reads, or followed by another, does not match.
HEADER = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*"
                    rb"((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*\r\n")
HEALTH_GET = re.compile(rb"GET /health HTTP/1\.1\r\n((?:%s)*)\r\n" % HEADER.pattern)
# Headers that would change what h11 or hypercorn do with a GET: a body to read, a 100
# Continue to send first, a protocol to switch to.
NOT_PLAIN = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade"})
STATUS_LINE = b"HTTP/1.1 200 \r\n"  # h11's, with the empty reason hypercorn gives it


def plain_health_get(data: bytes) -> bool:
    """`data` is one GET /health that h11 reads as a keep-alive request without a body and
    hypercorn hands to the app as is: one Host, and a Connection header, if any, that says
    only keep-alive."""
    head = HEALTH_GET.fullmatch(data)
    if head is None:
        return False
    hosts = 0
    for name, value in HEADER.findall(head[1]):
        name = name.lower()
        if name == b"host":
            hosts += 1
        elif name in NOT_PLAIN or (name == b"connection" and value.lower() != b"keep-alive"):
            return False
    return hosts == 1


def between_requests(protocol: H11Protocol) -> bool:
    """Nothing of a request is under way on the connection, nothing is buffered, and the
    answer would keep it open (the worker is not stopping, and this is not the request that
    reaches hypercorn's keep-alive limit, whose answer says Connection: close)."""
    connection = protocol.connection
    return (protocol.stream is None and type(connection) is h11.Connection
            and connection.our_state is h11.IDLE and connection.their_state is h11.IDLE
            and connection.trailing_data == (b"", False)
            and not protocol.context.terminated.is_set()
            and protocol.keep_alive_requests + 1 < protocol.config.keep_alive_max_requests)


def answering_health(state):
    """H11Protocol.handle with plain keep-alive GET /health answered where it arrives."""
    async def handle(self: H11Protocol, event) -> None:
        if type(event) is not RawData or not between_requests(self) or not plain_health_get(event.data):
            return await HYPERCORN_HANDLE(self, event)
        headers, body = health.response(state)
        lines = b"".join(b"%s: %s\r\n" % header
                         for header in chain(headers, self.config.response_headers("h11")))
        self.keep_alive_requests += 1
        await self.send(RawData(data=STATUS_LINE + lines + b"\r\n" + body))
        await self.send(Updated(idle=True))  # the keep-alive timeout counts from this answer
        await self.context.mark_request()  # hypercorn's count of requests (its max_requests)
    return handle


ANSWERED = (h11.IDLE, h11.DONE, h11.MUST_CLOSE)  # our side of h11: no answer under way


def closing_when_done(handle):
    """H11Protocol.handle that, on `Closed` (the reading has ended, or the keep-alive timer
    fired) with no answer under way, closes the connection now. A connection whose request
    broke h11's rules (their side in ERROR) was answered and closed by hypercorn already."""
    async def closing(self: H11Protocol, event) -> None:
        await handle(self, event)
        connection = self.connection
        if type(event) is Closed and self.stream is None and type(connection) is h11.Connection \
                and connection.our_state in ANSWERED and connection.their_state is not h11.ERROR:
            await self.send(Closed())
    return closing


class IdleTask:
    """hypercorn's AsyncioSingleTask (TCPServer.idle_task, the keep-alive timer) without the
    wait for a cancelled task's end. Nothing here awaits, so no lock is needed."""

    def __init__(self) -> None:
        self._handle = None

    async def restart(self, task_group, action) -> None:
        await self.stop()
        self._handle = task_group._task_group.create_task(action())

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def handling(state):
    """The worker's H11Protocol.handle."""
    return closing_when_done(answering_health(state))


def install(state) -> None:
    """Before serving: hypercorn's hooks replaced for this worker, whose `state` /health reads."""
    H11Protocol._send_error_response = _h11_error
    HTTPStream._send_error_response = _stream_error
    H11Protocol.handle = handling(state)
    tcp_server.AsyncioSingleTask = IdleTask
