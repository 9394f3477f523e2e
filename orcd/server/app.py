"""The HTTP API of SPEC §2: /execute (SSE), /cancel, /health, /metrics, /shutdown,
/openapi.json, and the OpenAI-compatible /v1 routes. Errors leave as `{"code", "message",
"retriable"}` (OpenAI's shape under /v1); never a stack trace. Every rejected request leaves
a `request_rejected` narration line."""
from __future__ import annotations

import hashlib
import hmac
import inspect
import time

from quart import Quart, Response, has_websocket_context, request, websocket
from quart.globals import request_ctx
from werkzeug.exceptions import BadHost, HTTPException, MethodNotAllowed, RequestEntityTooLarge

from orcd.errors import InternalError, InvalidRequest, OrcdError, Unauthorized, WorkerBusy, invalid
from orcd.server import openai, openai_shapes, openapi
from orcd.server.connection import Connection
from orcd.server.fields import Limits
from orcd.server.handlers import event_stream, json_body, traced_request
from orcd.server.health import health_first
from orcd.server.jobs import RETRY_AFTER_SECONDS
from orcd.server.schema import CANCEL, MAX_BODY_BYTES, SHUTDOWN, parse_execute
from orcd.server.sse import frame
from orcd.server.state import ServerState

OPEN_ROUTES = frozenset({"/health", "/metrics"})  # an orchestrator's probes need no key


class WorkerApp(Quart):
    asgi_http_class = Connection

    def ensure_async(self, func):
        """Quart asks this of every hook, route and session opener on every request, and its
        inspect.iscoroutinefunction takes seven calls to answer; a coroutine function's (or
        method's) code says so in one look."""
        code = getattr(func, "__code__", None)
        if code is not None and code.co_flags & inspect.CO_COROUTINE:
            return func
        return super().ensure_async(func)

    def create_url_adapter(self, incoming):
        """Werkzeug binds its router to the Host header and fails on one IDNA cannot encode
        (an empty or over-long label), before any handler could answer; bind such a request
        to a placeholder and let preprocess_request refuse it with the contract's 400."""
        try:
            return super().create_url_adapter(incoming)
        except BadHost:
            if incoming is None:
                raise
            incoming.host_refused = True
            return self.url_map.bind("invalid.host")

    async def preprocess_request(self, request_context=None):
        """A Host refused by create_url_adapter is answered before any before_request hook
        (the API key's) runs."""
        if getattr((request_context or request_ctx).request, "host_refused", False):
            raise invalid("Host", "not a valid host name")
        return await super().preprocess_request(request_context)


def create_app(state: ServerState, api_key: str | None = None) -> Quart:
    app = WorkerApp("orcd")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, RESPONSE_TIMEOUT=None)
    app.state = state
    app.asgi_app = health_first(app.asgi_app, state)
    limits = Limits(vocab_size=state.vocab_size, max_tokens_out=state.runner.max_tokens_out)
    document = openapi.document(limits)
    expected = _digest(f"Bearer {api_key}") if api_key else None

    async def authorize():
        if request.path in OPEN_ROUTES:
            return
        given = request.headers.get("Authorization", "")
        # Digests of equal length: the comparison time says nothing about the key.
        if not hmac.compare_digest(_digest(given), expected):
            raise Unauthorized("missing or wrong API key: send `Authorization: Bearer <key>` "
                               "with the worker's --api-key")

    if expected is not None:  # without a key, no hook: one coroutine less on every request
        app.before_request(authorize)

    @app.before_websocket
    async def no_websocket():
        raise invalid("Upgrade", "this worker serves no WebSocket; /execute streams over HTTP (SSE)")

    @app.post("/execute")
    async def execute():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        generation = parse_execute(body, limits)
        traced_request("parsed")
        job = await state.runner.start(generation, accepted_at, frame, trace)
        return event_stream(state, job)

    @app.post("/cancel")
    async def cancel():
        job_id = CANCEL.parse(await json_body(), limits)["job_id"]
        state.runner.cancel(job_id)
        return {"job_id": job_id, "status": "accepted"}, 202

    @app.get("/health")
    async def health():
        return state.health_now()

    @app.get("/metrics")
    async def metrics():
        text = state.metrics.render(state.health["vram_bytes_used"] or 0, state.runner.busy,
                                    len(state.runner.queue))
        return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/shutdown")
    async def shutdown():
        # application/json only: a browser must preflight it, so a web page cannot post it.
        SHUTDOWN.parse(await json_body(allow_empty=True), limits)
        state.begin_shutdown("POST /shutdown")
        return {"status": "shutting down"}, 202

    @app.get("/openapi.json")
    async def openapi_json():
        return document

    openai.register(app, state, limits)

    @app.errorhandler(OrcdError)
    async def orcd_error(error: OrcdError):
        return error_response(state, error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):
        if isinstance(error, RequestEntityTooLarge):
            # The rest of the body is never read, so the connection cannot carry another
            # request: say so, or a keep-alive client sends its next one into the closing socket.
            return error_response(state, invalid("body", f"larger than {MAX_BODY_BYTES} bytes (1 MiB)"),
                                  headers={"Connection": "close"})
        wrapped = InvalidRequest(f"{route()}: {error.name}")
        headers = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return error_response(state, wrapped, status=error.code, headers=headers)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        state.narrator.error(f"{route()} failed: {type(error).__name__}: {error}", code="INTERNAL")
        return error_response(state, InternalError("the worker failed to handle the request; see its log"))

    return app


def route() -> str:
    """"METHOD /path" of the request or WebSocket handshake being answered."""
    incoming = websocket if has_websocket_context() else request
    return f"{incoming.method} {incoming.path}"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def error_response(state: ServerState, error: OrcdError, status: int | None = None,
                   headers: dict | None = None) -> Response:
    status = status or error.http_status
    headers = dict(headers or {})
    if route().split(" ", 1)[1].startswith("/v1/"):
        response = openai_shapes.error_body(error)
    else:
        response = error.to_dict()
    # openai-python retries what this says, whatever the status (a 504 would run the job again)
    headers["x-should-retry"] = "true" if error.retriable else "false"
    if isinstance(error, WorkerBusy):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if status < 500 or isinstance(error, WorkerBusy):
        # The operator's view of why clients fail; the message names a field, never its text.
        state.narrator.event("request_rejected", error.message, route=route(),
                             status=status, code=error.code, field=getattr(error, "field", None))
    return response, status, headers
