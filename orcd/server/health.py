"""GET /health answered in front of Quart (its documented place for ASGI middleware,
app.asgi_app): the body is the cached health, so the request skips the routing, request
context and response machinery, about half a millisecond of event-loop time that would
otherwise queue behind token traffic (SPEC §2: p99 under 1 ms during decode). HEAD gets the
same headers without the body (through Quart's route its JSON, encoded another way, had
another length); the other methods go on to Quart, which refuses them. A plain keep-alive
GET /health is answered earlier still, from the same headers and body, by hypercorn's
protocol layer (orcd/server/http_layer.py)."""
from __future__ import annotations

import json

HEADERS = [(b"content-type", b"application/json")]
encode = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps makes one per call


def response(state) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a 200 to GET /health, now."""
    body = encode(state.health_now()).encode()
    return HEADERS + [(b"content-length", str(len(body)).encode())], body


def health_first(asgi_app, state):
    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/health" or \
                scope["method"] not in ("GET", "HEAD"):
            return await asgi_app(scope, receive, send)
        headers, body = response(state)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b"",
                    "more_body": False})
    return asgi
