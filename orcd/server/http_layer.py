"""Answers that hypercorn gives itself, before the app sees a request: broken HTTP/1.1
framing (400), headers over its limit (431), an unsupported transfer coding (501), an app
that ended without answering (500). Hypercorn sends them with an empty body; the contract
(SPEC §2) wants `{"code", "message", "retriable"}` on every error, so its two error writers
are replaced by ones that add that body. They are hypercorn's only hook for these answers."""
from __future__ import annotations

import json
from itertools import chain

import h11
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream

from orcd.errors import InternalError, InvalidRequest, OrcdError

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


def install() -> None:
    H11Protocol._send_error_response = _h11_error
    HTTPStream._send_error_response = _stream_error
