"""One job at a time on one engine thread; its events cross to the event loop.

The engine runs in a single dedicated thread so the event loop never waits on inference.
Each event the engine yields is handed to the loop with call_soon_threadsafe and put on the
job's asyncio queue, so tokens reach the HTTP response as they are produced. The terminal
event is decided on the loop, first one wins: /cancel, the timeout and shutdown end the
stream at once, and the engine thread sees `cancel` at its next decode step.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from orcd.engine.job import run_job
from orcd.errors import Cancelled, InferenceTimeout, InternalError, OrcdError, WorkerBusy
from orcd.logging import Narrator, utc_now_rfc3339
from orcd.server.metrics import Metrics
from orcd.server.schema import GenerationRequest

RETRY_AFTER_SECONDS = 1
DRAIN_TIMEOUT_SEC = 3.0
TERMINAL = ("end", "error")


class Job:
    def __init__(self, request: GenerationRequest, accepted_at: float):
        self.request = request
        self.id = request.job_id
        self.accepted_at = accepted_at
        self.prompt_ids: list[int] = []
        self.cancel = threading.Event()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.outcome: str | None = None
        self.tokens_seen = 0
        self.text: list[str] = []
        self.last_token_at: float | None = None
        self.timeout: asyncio.TimerHandle | None = None
        self.announced = False
        self.cancel_reason = ""

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    async def events(self):
        """(kind, data) pairs: started, token*, then exactly one of end or error."""
        while True:
            kind, data = await self.queue.get()
            yield kind, data
            if kind in TERMINAL:
                return


class JobRunner:
    def __init__(self, engine, thread: concurrent.futures.ThreadPoolExecutor, narrator: Narrator,
                 metrics: Metrics, *, model: str, ctx: int, max_tokens_out: int, timeout_sec: float):
        self.engine = engine
        self.thread = thread
        self.narrator = narrator
        self.metrics = metrics
        self.model = model
        self.ctx = ctx
        self.max_tokens_out = max_tokens_out
        self.timeout_sec = timeout_sec
        self.job: Job | None = None
        self.accepting = True
        self.drained = False

    @property
    def busy(self) -> bool:
        return self.job is not None

    async def start(self, request: GenerationRequest, accepted_at: float) -> Job:
        """Claim the slot, tokenize, and start the job; WORKER_BUSY or INVALID_REQUEST otherwise."""
        if not self.accepting:
            raise WorkerBusy("the worker is shutting down; send the job to another worker")
        if self.job is not None:
            self.metrics.requests["rejected"] += 1
            raise WorkerBusy(f"job {self.job.id!r} is running; retry in {RETRY_AFTER_SECONDS} s")
        job = self.job = Job(request, accepted_at)
        loop = asyncio.get_running_loop()
        try:
            job.prompt_ids = await loop.run_in_executor(self.thread, self.engine.prompt_ids,
                                                        request.prompt)
        except BaseException:
            self.job = None
            raise
        self._announce(job)
        if job.cancel.is_set():  # cancelled while its prompt was being tokenized
            self._fail(job, Cancelled(f"job {job.id!r} {job.cancel_reason}"))
            return job
        job.timeout = loop.call_later(self.timeout_sec, self._time_out, job)
        loop.run_in_executor(self.thread, self._generate, job, loop)
        return job

    def _announce(self, job: Job) -> None:
        r = job.request
        started = {"job_id": job.id, "model": self.model, "started_at": utc_now_rfc3339(),
                   "seed": r.params.seed, "prompt_tokens": len(job.prompt_ids)}
        job.queue.put_nowait(("started", started))
        job.announced = True
        self.metrics.prompt_tokens += len(job.prompt_ids)
        self.narrator.event("execute_start", f"job started with {len(job.prompt_ids)} prompt tokens",
                            job_id=job.id, prompt_tokens=len(job.prompt_ids),
                            max_tokens=r.max_tokens, seed=r.params.seed, prompt=r.prompt)

    def _generate(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        """Engine thread: run the job to its end, handing every event to the loop."""
        r = job.request
        room = self.ctx - len(job.prompt_ids)
        try:
            for kind, data in run_job(self.engine, self.engine.tokenizer, job.prompt_ids, r.params,
                                      min(r.max_tokens, room), list(r.stop), job.cancel):
                loop.call_soon_threadsafe(self._on_event, job, kind, data)
        except OrcdError as e:
            loop.call_soon_threadsafe(self._fail, job, e)
        except Exception as e:  # the client gets INTERNAL; the operator gets the cause in the log
            self.narrator.error(f"engine failed: {type(e).__name__}: {e}", code="INTERNAL", job_id=job.id)
            loop.call_soon_threadsafe(self._fail, job, InternalError("the engine failed; see the worker log"))
        finally:
            loop.call_soon_threadsafe(self._release, job)

    def _on_event(self, job: Job, kind: str, data: dict) -> None:
        if job.ended:
            return
        if kind == "token":
            self._count_token(job, data)
        elif kind == "end":
            self._finish(job, "ok", kind, data)
            return
        job.queue.put_nowait((kind, data))

    def _count_token(self, job: Job, data: dict) -> None:
        now = time.monotonic()
        if job.last_token_at is None:
            self.metrics.ttft.observe(now - job.accepted_at)
        else:
            self.metrics.itl.observe(now - job.last_token_at)
        job.last_token_at = now
        job.tokens_seen += 1
        job.text.append(data["t"])

    def _fail(self, job: Job, error: OrcdError) -> None:
        if job.ended:
            return
        outcome = "cancelled" if isinstance(error, Cancelled) else "error"
        if outcome == "error":
            self.narrator.error(error.message, code=error.code, job_id=job.id)
        self._finish(job, outcome, "error", error.to_dict())

    def _finish(self, job: Job, outcome: str, kind: str, data: dict) -> None:
        """The terminal event frees the slot at once: a next job queues on the engine thread
        behind this one, which stops at its next decode step."""
        job.outcome = outcome
        job.cancel.set()
        if self.job is job:
            self.job = None
        if job.timeout is not None:
            job.timeout.cancel()
        job.queue.put_nowait((kind, data))
        self.metrics.requests[outcome] += 1
        tokens = data.get("tokens_out", job.tokens_seen)
        self.metrics.tokens_generated += tokens
        self.narrator.event("execute_end", f"job ended: {data.get('stop_reason', data.get('code'))}",
                            job_id=job.id, outcome=outcome, tokens_out=tokens, text="".join(job.text),
                            **{k: v for k, v in data.items() if k in ("stop_reason", "decode_time_ms", "code")})

    def _release(self, job: Job) -> None:
        if not job.ended:
            self._fail(job, InternalError("the engine stopped without a terminal event"))

    def _time_out(self, job: Job) -> None:
        self._fail(job, InferenceTimeout(
            f"the job ran longer than --inference-timeout-sec {self.timeout_sec:g} s"))

    def cancel(self, job_id: str, reason: str = "cancelled by request") -> bool:
        """Stop the running job if it is `job_id`; True when there was one to stop."""
        job = self.job
        if job is None or job.id != job_id or job.ended:
            return False
        self.narrator.event("cancel", reason, job_id=job_id)
        if job.announced:
            self._fail(job, Cancelled(f"job {job_id!r} {reason}"))
        else:  # the stream must open with `started`: start() ends the job right after it
            job.cancel_reason = reason
            job.cancel.set()
        return True

    def abandon(self, job: Job) -> None:
        """The client went away mid-stream: stop decoding; nobody reads the terminal event."""
        if not job.ended:
            self.cancel(job.id, "cancelled: the client disconnected")

    async def drain(self) -> None:
        """Shutdown: refuse new jobs, cancel the running one, free the engine on its thread.
        `drained` stays False if the engine thread does not come back in time (SPEC: exit
        within 5 s), so the caller can leave without waiting for it."""
        self.accepting = False
        job = self.job
        if job is not None:
            self.cancel(job.id, "cancelled: the worker is shutting down")
        close = asyncio.get_running_loop().run_in_executor(self.thread, self.engine.close)
        try:
            await asyncio.wait_for(close, DRAIN_TIMEOUT_SEC)
        except asyncio.TimeoutError:
            self.narrator.error(f"the engine did not stop within {DRAIN_TIMEOUT_SEC} s; exiting anyway",
                                code="INTERNAL")
            return
        self.thread.shutdown(wait=False)
        self.drained = True
