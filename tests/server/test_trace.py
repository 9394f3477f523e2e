"""`orcd serve --trace`: which requests carry a Trace."""
import asyncio
import io

from orcd.logging import Narrator
from orcd.server.trace import traced


def test_only_requests_that_can_run_a_job_are_traced():
    """A GET runs no job (/health, /metrics, /v1/models): it is answered without a Trace."""
    seen = {}

    async def app(scope, receive, send):
        seen[scope["method"]] = "orcd.trace" in scope

    asgi = traced(app, Narrator("w", "m", 0, stream=io.StringIO()))
    for method in ("GET", "POST"):
        asyncio.run(asgi({"type": "http", "method": method, "path": "/"}, None, None))
    assert seen == {"GET": False, "POST": True}
