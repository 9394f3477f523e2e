"""The HTTP API of SPEC §2: /execute (SSE), /cancel, /health, /metrics, /shutdown, and the
OpenAI-compatible /v1 routes. Errors leave as `{"code", "message", "retriable"}` (OpenAI's
shape under /v1); never a stack trace."""
from __future__ import annotations

import time

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from orcd.errors import InternalError, InvalidRequest, OrcdError, WorkerBusy, invalid
from orcd.server import openai, openai_shapes
from orcd.server.handlers import event_stream, json_body, traced_request
from orcd.server.health import health_first
from orcd.server.jobs import RETRY_AFTER_SECONDS
from orcd.server.schema import MAX_BODY_BYTES, parse_execute, text_field
from orcd.server.sse import frame
from orcd.server.state import ServerState


def create_app(state: ServerState) -> Quart:
    app = Quart("orcd")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, RESPONSE_TIMEOUT=None)
    app.state = state
    app.asgi_app = health_first(app.asgi_app, state)

    @app.post("/execute")
    async def execute():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        generation = parse_execute(body, state.vocab_size, state.runner.max_tokens_out)
        if trace is not None:
            trace.mark("parsed")
        job = await state.runner.start(generation, accepted_at, frame, trace)
        return event_stream(state, job)

    @app.post("/cancel")
    async def cancel():
        body = await json_body()
        unknown = sorted(set(body) - {"job_id"})
        if unknown:
            raise invalid(unknown[0], "unknown field")
        job_id = text_field(body, "job_id", 256)
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
        state.begin_shutdown("POST /shutdown")
        return {"status": "shutting down"}, 202

    openai.register(app, state)

    @app.errorhandler(OrcdError)
    async def orcd_error(error: OrcdError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):
        if isinstance(error, RequestEntityTooLarge):
            body, status, headers = error_response(invalid("body", f"larger than {MAX_BODY_BYTES} "
                                                                   f"bytes (1 MiB)"))
            # The rest of the body is never read, so the connection cannot carry another
            # request: say so, or a keep-alive client sends its next one into the closing socket.
            return body, status, {**headers, "Connection": "close"}
        wrapped = InvalidRequest(f"{request.method} {request.path}: {error.name}")
        return error_response(wrapped, status=error.code)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):
        state.narrator.error(f"{request.method} {request.path} failed: {type(error).__name__}: {error}",
                             code="INTERNAL")
        return error_response(InternalError("the worker failed to handle the request; see its log"))

    return app


def error_response(error: OrcdError, status: int | None = None) -> Response:
    status = status or error.http_status
    if request.path.startswith("/v1/"):
        response = openai_shapes.error_body(error)
    else:
        response = error.to_dict()
    # openai-python retries what this says, whatever the status (a 504 would run the job again)
    headers = {"x-should-retry": "true" if error.retriable else "false"}
    if isinstance(error, WorkerBusy):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status, headers
