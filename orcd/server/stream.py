"""One job's events on their way from the engine thread to its HTTP response.

The engine thread appends each token event with its frame already encoded (JSON is per-token
work, kept off the event loop) and wakes the loop only when the response is waiting, once per
burst: tokens that arrive while the loop is busy leave together, in one write.

Having woken the loop, the engine thread waits (at most HANDOFF_SEC) until the loop has sent
what it was woken for, and before the job's first token until the response is waiting for it.
Without that the loop waits behind the engine thread for the GIL: a thread that releases the
GIL briefly and often (the CPU engine's NumPy calls) takes it back before the woken loop can,
and resets the switch interval's count each time (tiny model, CPU engine, first token: the
frame reached the loop 1-11 ms after the engine thread put it).
"""
from __future__ import annotations

import asyncio
import collections
import threading
from typing import Callable

TERMINAL = ("end", "error")

Encode = Callable[[str, dict], bytes]
HANDOFF_SEC = 0.005  # the longest the engine thread waits for the loop (a reader gone, a busy loop)


class JobStream:
    def __init__(self, loop: asyncio.AbstractEventLoop, encode: Encode | None):
        self.loop = loop
        self.encode = encode  # None: the response reads events, not frames
        self.items: collections.deque[tuple[str, dict, bytes | None]] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.wake_scheduled = False
        self.reading = threading.Event()  # the reader has waited for items once
        self.sent = threading.Event()  # the reader has sent the items it was last woken for

    def put(self, kind: str, data: dict) -> None:
        """On the event loop."""
        self.items.append((kind, data, self.encode(kind, data) if self.encode else None))
        self._wake()

    def put_threadsafe(self, kind: str, data: dict) -> None:
        """On the engine thread. The append comes before the look at the waiter, and the
        reader sets its waiter before it looks for items, so one of them sees the other; `sent`
        is cleared before the append, so the reader's set after taking it is not lost."""
        self.sent.clear()
        self.items.append((kind, data, self.encode(kind, data) if self.encode else None))
        if self.waiter is not None and not self.wake_scheduled:
            self.wake_scheduled = True
            self.loop.call_soon_threadsafe(self._wake)
            self.sent.wait(HANDOFF_SEC)

    def wait_for_reader(self) -> None:
        """On the engine thread: until the response waits for items (its head sent), so
        that the loop's work on it is done before the engine thread takes the GIL back."""
        self.reading.wait(HANDOFF_SEC)

    def _wake(self) -> None:
        self.wake_scheduled = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def batches(self):
        """Lists of (kind, data, frame) in order; the last ends with the terminal event. A
        batch counts as sent once the next is asked for."""
        try:
            while True:
                while not self.items:
                    self.waiter = self.loop.create_future()
                    self.reading.set()
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
                self.sent.set()
        finally:
            self.reading.set()
            self.sent.set()
