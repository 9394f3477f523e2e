"""One job at a time on one engine thread; its events cross to the event loop.

The engine runs in a single dedicated thread so the event loop never waits on inference. A
job crosses to it once: the thread tokenizes the prompt (a refused prompt goes back to the
request as INVALID_REQUEST), finds the prefix the KV cache holds, starts the engine, then
opens the job's stream with `started` (after the start: the loop's work on the request must
not hold the GIL while the engine thread starts the job), and generates. Each token event goes from there straight into the stream, its
frame encoded on the engine thread (orcd/server/stream.py). The terminal event is decided on
the loop, first one wins: /cancel, the timeout and shutdown end the stream at once, and the
engine thread sees `cancel` at its next decode step.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from orcd.engine.grammar import Grammars
from orcd.engine.job import run_job
from orcd.errors import Cancelled, InferenceTimeout, InternalError, OrcdError, WorkerBusy
from orcd.logging import Narrator, utc_now_rfc3339
from orcd.server.garbage import collect_between_jobs
from orcd.server.metrics import Metrics
from orcd.server.schema import GenerationRequest
from orcd.server.stream import Encode, JobStream
from orcd.server.waitqueue import WaitQueue

RETRY_AFTER_SECONDS = 1
DRAIN_TIMEOUT_SEC = 3.0


class Job:
    def __init__(self, request: GenerationRequest, accepted_at: float, stream: JobStream, trace=None):
        self.request = request
        self.id = request.job_id
        self.accepted_at = accepted_at
        self.stream = stream
        self.trace = trace
        self.prompt_ids: list[int] = []
        self.cached_tokens = 0
        self.cancel = threading.Event()
        self.accepted: asyncio.Future = stream.loop.create_future()  # set once the engine runs it
        self.outcome: str | None = None
        self.tokens_seen = 0
        self.text: list[str] = []
        self.last_token_at: float | None = None
        self.timeout: asyncio.TimerHandle | None = None
        self.announced = False
        self.cancelled_by: Cancelled | None = None

    def mark(self, stage: str) -> None:
        if self.trace is not None:
            self.trace.mark(stage)

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    async def events(self):
        """(kind, data) pairs: started, token*, then exactly one of end or error."""
        async for batch in self.stream.batches():
            for kind, data, _ in batch:
                yield kind, data

    async def chunks(self):
        """The response body: the encoded frames, those that arrived together joined; with a
        trace, the batch of the first token marks when it came and when it left."""
        trace = self.trace
        async for batch in self.stream.batches():
            first_token = trace is not None and "loop_received" not in trace.marks \
                and any(kind == "token" for kind, _, _ in batch)
            if first_token:
                trace.mark("loop_received")
            chunk = b"".join(frame for _, _, frame in batch)
            if first_token:
                trace.mark("frame_yielded")
            yield chunk


class JobRunner:
    def __init__(self, engine, thread: concurrent.futures.ThreadPoolExecutor, narrator: Narrator,
                 metrics: Metrics, *, model: str, ctx: int, max_tokens_out: int, timeout_sec: float,
                 prompt_cache: bool = True, queue_depth: int = 16, queue_timeout_sec: float = 300.0):
        self.engine = engine
        self.thread = thread
        self.narrator = narrator
        self.metrics = metrics
        self.model = model
        self.ctx = ctx
        self.max_tokens_out = max_tokens_out
        self.timeout_sec = timeout_sec
        self.prompt_cache = prompt_cache  # off: --no-prompt-cache
        self.job: Job | None = None
        self.queue = WaitQueue(queue_depth, queue_timeout_sec)
        self.grammars = Grammars(engine.tokenizer, engine.config.vocab_size)
        self.accepting = True
        self.drained = False

    @property
    def busy(self) -> bool:
        return self.job is not None

    async def start(self, request: GenerationRequest, accepted_at: float, encode: Encode | None = None,
                    trace=None, wait: bool = False, first: bool = False) -> Job:
        """Claim the slot and hand the job to the engine thread; returns once its prompt is
        tokenized, the engine runs it and `started` is queued. WORKER_BUSY or INVALID_REQUEST otherwise.
        encode(kind, data) -> bytes makes the frames of Job.chunks(). `wait`: queue for a busy
        slot (the OpenAI routes) instead of WORKER_BUSY at once; `first`: ahead of the queue
        (the next choice of a request already served)."""
        if not self.accepting:
            raise WorkerBusy("the worker is shutting down; send the job to another worker")
        if self.job is not None or self.queue.holds_slot:
            if not wait:
                self.metrics.requests["rejected"] += 1
                # The running job's id stays private: /cancel takes any id, so naming it here
                # would let any client stop another's job.
                raise WorkerBusy(f"a job is running; retry in {RETRY_AFTER_SECONDS} s or send it to another worker")
            try:
                await self.queue.wait(first)
            except WorkerBusy:
                self.metrics.requests["rejected"] += 1
                raise
        loop = asyncio.get_running_loop()
        job = self.job = Job(request, accepted_at, JobStream(loop, encode), trace)
        if trace is not None:
            trace.job_id = job.id
        self.thread.submit(self._run, job)
        try:
            await job.accepted
        except BaseException:
            job.cancel.set()  # the engine thread must not run it
            if self.job is job:
                self._free_slot()
            raise
        return job

    def _run(self, job: Job) -> None:
        """Engine thread: everything a job does before and while it generates."""
        loop = job.stream.loop
        job.mark("tokenize_start")
        try:
            job.prompt_ids = self.engine.prompt_ids(job.request.prompt)
            # a scored prompt is prefilled whole: its cached rows have no logits
            if job.request.cache_prompt and self.prompt_cache and not job.request.prompt_logprobs:
                job.cached_tokens = self.engine.reusable_prefix(job.prompt_ids)
        except Exception as e:  # noqa: BLE001 - INVALID_REQUEST, or INTERNAL with its cause logged
            loop.call_soon_threadsafe(self._refuse, job, self._as_error(job, e, "the tokenizer"))
            return
        job.mark("tokenized")
        self._generate(job, loop)

    def _announce(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        """Engine thread, once: `started` into the stream (before any token) and the job handed
        to the loop (_accept). Called when the engine has the job running, so that the loop's
        work on the request (its answer's head, the narration) does not take the GIL while the
        engine thread needs it to start the job (0.5 ms of the first token on the H200); the
        engine thread then lets the loop answer the request before it goes on (stream.py)."""
        if job.announced:
            return
        job.stream.put_threadsafe("started", self._started(job))
        job.announced = True
        loop.call_soon_threadsafe(self._accept, job)
        job.stream.wait_for_reader()

    def _as_error(self, job: Job, error: Exception, where: str) -> OrcdError:
        if isinstance(error, OrcdError):
            return error
        # the client gets INTERNAL; the operator gets the cause in the log
        self.narrator.error(f"{where} failed: {type(error).__name__}: {error}", code="INTERNAL",
                            job_id=job.id)
        return InternalError(f"{where} failed; see the worker log")

    def _refuse(self, job: Job, error: OrcdError) -> None:
        if self.job is job:
            self._free_slot()
        if not job.accepted.done():
            job.accepted.set_exception(error)

    def _started(self, job: Job) -> dict:
        return {"job_id": job.id, "model": self.model, "started_at": utc_now_rfc3339(),
                "seed": job.request.params.seed, "prompt_tokens": len(job.prompt_ids),
                "cached_tokens": job.cached_tokens}

    def _accept(self, job: Job) -> None:
        """Event loop, once `started` is in the stream: count and narrate the job, and end
        it at once if it was cancelled while its prompt was tokenized."""
        if job.accepted.done():  # the request went away meanwhile; start() cancelled the job
            return
        job.mark("announced")
        r, n = job.request, len(job.prompt_ids)
        self.metrics.prompt_tokens += n
        self.metrics.cached_prompt_tokens += job.cached_tokens
        self.narrator.event("execute_start", f"job started with {n} prompt tokens "
                            f"({job.cached_tokens} from the prompt cache)", job_id=job.id,
                            prompt_tokens=n, cached_tokens=job.cached_tokens,
                            max_tokens=r.max_tokens, seed=r.params.seed, prompt=r.prompt)
        if job.cancelled_by is not None:
            self._fail(job, job.cancelled_by)
        else:
            job.timeout = job.stream.loop.call_later(self.timeout_sec, self._time_out, job)
        job.accepted.set_result(None)

    def _generate(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        """Engine thread: run the job to its end; tokens go to the stream, the end to the loop."""
        r = job.request
        room = self.ctx - len(job.prompt_ids)
        job.mark("generate_start")
        announce = lambda: self._announce(job, loop)  # noqa: E731
        try:
            for kind, data in run_job(self.engine, self.engine.tokenizer, job.prompt_ids, r.params,
                                      min(r.max_tokens, room), list(r.stop), job.cancel,
                                      job.cached_tokens, r.scoring(), self.constraint(r), r.skip_special,
                                      on_start=announce):
                if kind == "end":
                    if job.trace is not None:  # a job that streamed no token still shows the engine's stages
                        job.trace.merge(self.engine.job_marks())
                    self._between_jobs()
                    loop.call_soon_threadsafe(self._end, job, data)
                else:
                    self._deliver(job, kind, data)
        except Exception as e:  # noqa: BLE001 - every failure becomes the job's error event
            announce()  # a job that failed before it started still opens with `started`
            loop.call_soon_threadsafe(self._fail, job, self._as_error(job, e, "the engine"))
        finally:
            announce()
            loop.call_soon_threadsafe(self._release, job)

    def constraint(self, request: GenerationRequest):
        """A fresh matcher of the request's grammar, or None (engine thread)."""
        if request.grammar is None:
            return None
        return self.grammars.matcher(request.grammar)

    def _deliver(self, job: Job, kind: str, data: dict) -> None:
        """Engine thread: one token (or prompt_logprobs) event into the stream, unless the job
        has ended."""
        if job.ended:
            return
        if kind != "token":
            job.stream.put_threadsafe(kind, data)
            return
        if job.trace is not None and "first_event" not in job.trace.marks:
            job.trace.merge(self.engine.job_marks())
            job.trace.mark("first_event")
        now = time.monotonic()
        if job.last_token_at is None:
            self.metrics.ttft.observe(now - job.accepted_at)
        else:
            self.metrics.itl.observe(now - job.last_token_at)
        job.last_token_at = now
        job.tokens_seen += 1
        job.text.append(data["t"])
        job.stream.put_threadsafe(kind, data)

    def _end(self, job: Job, data: dict) -> None:
        if not job.ended:
            self._finish(job, "ok", "end", data)

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
            self._free_slot()
        if job.timeout is not None:
            job.timeout.cancel()
        job.stream.put(kind, data)
        self.metrics.requests[outcome] += 1
        tokens = data.get("tokens_out", job.tokens_seen)
        self.metrics.tokens_generated += tokens
        self.narrator.event("execute_end", f"job ended: {data.get('stop_reason', data.get('code'))}",
                            job_id=job.id, outcome=outcome, tokens_out=tokens, text="".join(job.text),
                            **{k: v for k, v in data.items() if k in ("stop_reason", "decode_time_ms", "code")})

    def _between_jobs(self) -> None:
        """Engine thread, the job's last token sent and its end not yet: the cycle collector's
        turn (orcd/server/garbage.py), before the client can send its next request, unless
        another request already waits for the slot."""
        if not self.queue.holds_slot:
            collect_between_jobs()

    def _free_slot(self) -> None:
        self.job = None
        self.queue.wake_next()

    def _release(self, job: Job) -> None:
        if not job.ended:
            self._fail(job, InternalError("the engine stopped without a terminal event"))

    def _time_out(self, job: Job) -> None:
        self._fail(job, InferenceTimeout(
            f"the job ran longer than --inference-timeout-sec {self.timeout_sec:g} s"))

    def cancel(self, job_id: str, reason: str = "cancelled by request", retriable: bool = False) -> bool:
        """Stop the running job if it is `job_id`; True when there was one to stop."""
        job = self.job
        if job is None or job.id != job_id or job.ended:
            return False
        self.narrator.event("cancel", reason, job_id=job_id)
        error = Cancelled(f"job {job_id!r} {reason}", retriable=retriable)
        if job.announced:
            self._fail(job, error)
        else:  # the stream must open with `started`: _accept ends the job right after it
            job.cancelled_by = error
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
        self.queue.refuse_all("the worker is shutting down; send the request to another worker")
        job = self.job
        if job is not None:
            self.cancel(job.id, "cancelled: the worker is shutting down; send it to another worker",
                        retriable=True)
        close = asyncio.get_running_loop().run_in_executor(self.thread, self.engine.close)
        try:
            await asyncio.wait_for(close, DRAIN_TIMEOUT_SEC)
        except asyncio.TimeoutError:
            self.narrator.error(f"the engine did not stop within {DRAIN_TIMEOUT_SEC} s; exiting anyway",
                                code="INTERNAL")
            return
        self.thread.shutdown(wait=False)
        self.drained = True
