"""One job's events on their way from the engine thread to its HTTP response.

The engine thread appends each token event with its frame already encoded (JSON is per-token
work, kept off the event loop) and wakes the loop only when the response is waiting, once per
burst: tokens that arrive while the loop is busy leave together, in one write.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Callable

TERMINAL = ("end", "error")

Encode = Callable[[str, dict], bytes]


class JobStream:
    def __init__(self, loop: asyncio.AbstractEventLoop, encode: Encode | None):
        self.loop = loop
        self.encode = encode  # None: the response reads events, not frames
        self.items: collections.deque[tuple[str, dict, bytes | None]] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.wake_scheduled = False

    def put(self, kind: str, data: dict) -> None:
        """On the event loop."""
        self.items.append((kind, data, self.encode(kind, data) if self.encode else None))
        self._wake()

    def put_threadsafe(self, kind: str, data: dict) -> None:
        """On the engine thread. The append comes before the look at the waiter, and the
        reader sets its waiter before it looks for items, so one of them sees the other."""
        self.items.append((kind, data, self.encode(kind, data) if self.encode else None))
        if self.waiter is not None and not self.wake_scheduled:
            self.wake_scheduled = True
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.wake_scheduled = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def batches(self):
        """Lists of (kind, data, frame) in order; the last ends with the terminal event."""
        while True:
            while not self.items:
                self.waiter = self.loop.create_future()
                if not self.items:
                    await self.waiter
                self.waiter = None
            batch = []
            while self.items:
                batch.append(self.items.popleft())
                if batch[-1][0] in TERMINAL:
                    yield batch
                    return
            yield batch
