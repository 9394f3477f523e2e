"""One HTTP request inside Quart, run in the task hypercorn started for it.

Quart's own ASGIHTTPConnection starts two more tasks per request, one for the route and one
that reads the body and waits for the client to leave, waits for the first of them with
asyncio.wait, and awaits the other's cancellation at the end: two tasks, a pass of the event
loop before the route starts and another after its response, on every request (tens of µs
each on the request path, and event-loop time that /health waits behind during a stream).
Here the body hypercorn has already queued is taken at once, the route runs in the request's
own task, and one task waits for the disconnect, which cancels the route as Quart's does (so
a client that goes away ends its stream and its job): the route starts, reads its body and
hands its job to the engine thread without a pass of the loop.
"""
from __future__ import annotations

import asyncio

from quart.asgi import ASGIHTTPConnection


class Connection(ASGIHTTPConnection):
    async def __call__(self, receive, send) -> None:
        request = self._create_request_from_scope(send)
        if not await self._take_body(request, receive):
            return  # the client left before its body was complete: nobody to answer
        route = asyncio.current_task()
        watcher = asyncio.ensure_future(self._watch(request, receive, route))
        try:
            await self.handle_request(request, send)
        except asyncio.CancelledError:
            # The client left and _watch cancelled the route: the request ends there, as with
            # Quart's connection, unless the task is being cancelled for another reason too.
            if not (watcher.done() and not watcher.cancelled() and watcher.exception() is None) \
                    or not _uncancelled(route):
                raise
        finally:
            watcher.cancel()

    async def _take_body(self, request, receive) -> bool:
        """The body of a request that announced its length within the limit: hypercorn queues
        a small body's messages before the app is called, so no await here waits. A chunked
        body, or one over the limit (refused unread by the route), is left to _watch. False
        when the client disconnected first."""
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is None or (limit is not None and request.content_length > limit):
            return True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            request.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                request.body.set_complete()
                # nothing left to wait for: without a timeout, get_data() returns without the
                # task and the pass of the loop that asyncio.wait_for would take
                request.body_timeout = None
                return True

    async def _watch(self, request, receive, route: asyncio.Task) -> None:
        """Feed the rest of the body (if any) to the route; cancel it once the client leaves.
        Cancelled itself when the route has answered."""
        await self.handle_messages(request, receive)
        route.cancel()


def _uncancelled(task: asyncio.Task) -> bool:
    """Take back one request to cancel `task` (Python 3.11 counts them); False when another
    remains."""
    uncancel = getattr(task, "uncancel", None)
    return uncancel is None or uncancel() == 0
