"""The OpenAI routes' wait for the one job slot: a bounded FIFO (SPEC §2).

OpenAI clients answer a 503 with two retries and then give up, so two overlapping requests
from a LangChain `batch` would fail; they wait here instead. /execute never waits: an
orchestrator wants WORKER_BUSY at once to route the job elsewhere.
"""
from __future__ import annotations

import asyncio
import collections

from orcd.errors import WorkerBusy


class WaitQueue:
    def __init__(self, depth: int, timeout_sec: float):
        self.depth = depth
        self.timeout_sec = timeout_sec
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        # A waiter woken for the free slot that has not claimed it yet: nobody else may take it.
        self.handing_over = False

    def __len__(self) -> int:
        return len(self.waiters)

    @property
    def holds_slot(self) -> bool:
        return self.handing_over or bool(self.waiters)

    async def wait(self, first: bool = False) -> None:
        """Return when the slot is this caller's; WORKER_BUSY when the queue is full or the
        wait outlasts timeout_sec. `first` queues a continuation of a request being served
        (its next choice) ahead of the others and past the depth limit."""
        if not first and len(self.waiters) >= self.depth:
            raise WorkerBusy(f"{self.depth} requests are already waiting (--queue-depth); retry later")
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        if first:
            self.waiters.appendleft(turn)
        else:
            self.waiters.append(turn)
        timer = loop.call_later(self.timeout_sec, self._expire, turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.handing_over = False  # woken, then the client left: the next one gets it
                self.wake_next()
            elif turn in self.waiters:
                self.waiters.remove(turn)
            raise
        finally:
            timer.cancel()
        self.handing_over = False

    def wake_next(self) -> bool:
        """Hand the free slot to the longest waiter; False when nobody waits."""
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                self.handing_over = True
                return True
        return False

    def refuse_all(self, why: str) -> None:
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_exception(WorkerBusy(why))

    def _expire(self, turn: asyncio.Future) -> None:
        if not turn.done():
            self.waiters.remove(turn)
            turn.set_exception(WorkerBusy(f"waited {self.timeout_sec:g} s for the worker "
                                          f"(--queue-timeout-sec); retry later"))
