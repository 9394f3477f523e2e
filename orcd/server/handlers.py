"""What the generation routes share: the request's JSON body and trace, and the streamed
response of a job."""
from __future__ import annotations

from quart import Response, request

from orcd.server.schema import parse_json_body

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def json_body(allow_empty: bool = False) -> dict:
    return parse_json_body(await request.get_data(cache=False), request.headers.get("Content-Type"),
                           allow_empty)


def traced_request(stage: str):
    """The request's Trace (orcd serve --trace), marked at `stage`; None when not tracing."""
    trace = request.scope.get("orcd.trace")
    if trace is not None:
        trace.mark(stage)
    return trace


def event_stream(state, job, headers: dict = SSE_HEADERS) -> Response:
    """The job's frames as they come; a client that goes away cancels the job."""
    async def body():
        try:
            async for chunk in job.chunks():
                yield chunk
        finally:
            state.runner.abandon(job)

    response = Response(body(), content_type="text/event-stream; charset=utf-8", headers=headers)
    response.timeout = None
    return response
