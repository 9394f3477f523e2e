"""Where a request's time goes (`orcd serve --trace`): a timestamp at each hand-off between
the bytes arriving and its first token leaving, narrated as one debug `trace` line per job.

The stamps are time.perf_counter_ns(), CLOCK_MONOTONIC on Linux: one clock for every process
on the machine, so a client on the same host (`orcd bench server --trace`) can put its own
send and receive times beside them.
"""
from __future__ import annotations

import time

# The hand-offs in the order the first token meets them; a stage missing from a trace was
# not reached.
STAGES = (
    "received",        # the ASGI app is called: hypercorn has parsed the request head
    "handler",         # the route's handler starts (Quart's routing and request context)
    "parsed",          # the body is read, parsed and validated (event loop)
    "tokenize_start",  # the engine thread picks the job up
    "tokenized",       # prompt ids known, cached prefix found
    "generate_start",  # the engine thread calls the engine
    # the engine's own stages (Engine.job_marks; the CUDA engine's C decode loop):
    "engine_entered",    # the decode thread enters the C loop
    "engine_prefilled",  # the prompt's prefill and the first sample are launched
    "engine_first_id",   # the first id is on the host (published to the token ring next)
    "first_event",     # the first token's text is known (prefill, first sample, detokenized)
    "loop_received",   # the event loop holds the first token's frame
    "frame_yielded",   # the response body hands that frame to Quart
    "asgi_send",       # Quart hands it to hypercorn, which writes it to the socket
)
# Stages off that path: the event loop counts and narrates the job while the engine thread
# goes on; each is timed from the stage named here.
BESIDE = {"announced": "tokenized"}  # `started` queued once the engine runs the job, then the loop


class Trace:
    __slots__ = ("marks", "job_id")

    def __init__(self) -> None:
        self.marks = {"received": time.perf_counter_ns()}
        self.job_id: str | None = None

    def mark(self, stage: str) -> None:
        """The first time the request reaches `stage`; later calls keep that time."""
        if stage not in self.marks:
            self.marks[stage] = time.perf_counter_ns()

    def merge(self, marks: dict[str, int]) -> None:
        """Stages timed elsewhere (the engine's), perf_counter_ns each."""
        for stage, ns in marks.items():
            self.marks.setdefault(stage, ns)

    def fields(self) -> dict:
        """For the narration line: the absolute start, and each stage in µs after it."""
        start = self.marks["received"]
        return {"received_ns": start,
                "stages_us": {s: round((t - start) / 1000, 1) for s, t in self.marks.items()}}


def traced(app, narrator):
    """The ASGI app with a Trace in every HTTP request's scope (scope["orcd.trace"]) but a
    GET's (no job runs on one: /health is not slowed); a request that ran a job is narrated
    once its response has been sent."""
    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["method"] == "GET":
            return await app(scope, receive, send)
        trace = scope["orcd.trace"] = Trace()

        async def send_traced(message):
            if "asgi_send" not in trace.marks and "frame_yielded" in trace.marks \
                    and message["type"] == "http.response.body":
                trace.mark("asgi_send")
            await send(message)

        try:
            await app(scope, receive, send_traced)
        finally:
            if trace.job_id is not None:
                narrator.event("trace", "where the first token's time went", level="debug",
                               job_id=trace.job_id, **trace.fields())
    return asgi
