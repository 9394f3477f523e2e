"""hypercorn's keep-alive timeout as a timer, not a task per connection.

hypercorn times an idle connection with a task (AsyncioSingleTask) that waits, through
asyncio.wait_for and a second task, for the keep-alive timeout or the worker's end. It starts
one when a connection opens, and when a request arrives it cancels that task and awaits its
end: several passes of the event loop between a request's bytes and the app, on the first
token's path (a fresh connection's POST on the 2-core dev box: 100-150 µs less of the loop
thread's CPU time from the accept to the app, by thread-time stamps; the wall-clock medians
of `orcd bench server`'s cached prefix turns there moved less than their noise). Here the
idle time is a loop timer, armed and disarmed in place; one task per worker closes the idle
connections when the worker stops, as each connection's task did. A connection its client
closed now ends at once: hypercorn's task group waited for the idle task's timeout first.
"""
from __future__ import annotations

import asyncio

from hypercorn.asyncio import run as hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer


class IdleTimer:
    """TCPServer.idle_task's interface (restart, stop) over loop.call_later."""

    def __init__(self, server: TCPServer):
        self.server = server
        self.handle: asyncio.TimerHandle | None = None
        self.idle = idle_connections(server)

    async def restart(self, task_group, action) -> None:
        """`action` is the server's _idle_timeout; the timer closes the connection itself."""
        self.disarm()
        if self.server.context.terminated.is_set():
            self.expire()
            return
        self.handle = self.server.loop.call_later(self.server.config.keep_alive_timeout, self.expire)
        self.idle.add(self)

    async def stop(self) -> None:
        self.disarm()

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.idle.discard(self)

    def expire(self) -> None:
        """What hypercorn's idle task did once its wait ended: close the connection, in a task
        of the connection's own group (the worker waits for those when it stops)."""
        self.disarm()
        close = self.server._initiate_server_close()
        try:
            self.server._task_group._task_group.create_task(close)
        except RuntimeError:  # the group has ended: the connection is closing already
            close.close()


class IdleConnections(set):
    """The worker's armed IdleTimers; closed at once when the worker stops."""

    def __init__(self, context):
        super().__init__()
        self.watcher = asyncio.get_running_loop().create_task(self._close_on_stop(context))

    async def _close_on_stop(self, context) -> None:
        await context.terminated.wait()
        for timer in list(self):
            timer.expire()


def idle_connections(server: TCPServer) -> IdleConnections:
    """The IdleConnections of the server's worker context, made with its first connection."""
    context = server.context
    idle = getattr(context, "orcd_idle", None)
    if idle is None:
        idle = context.orcd_idle = IdleConnections(context)
    return idle


class Connection(TCPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_task = IdleTimer(self)


def install() -> None:
    """worker_serve makes each connection's TCPServer by this name."""
    hypercorn_run.TCPServer = Connection
