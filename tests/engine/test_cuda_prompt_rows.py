"""The CUDA engine's Python side of a job without a GPU: a stand-in for DeviceModel records what
start_job receives. The prompt crosses as int32 from a buffer that keeps the cached ids' rows
(CudaEngine._prompt_rows), converting only the ids past n_cached; every start_job must receive
exactly the job's prompt, as a whole conversion gives it, through cached turns, edits, failed,
cancelled and stopped jobs, scored prompts and forward_logits between them."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from orcd.engine.base import Engine
from orcd.engine.cuda import CudaEngine
from orcd.engine.logprobs import Scoring, TokenLogprob
from orcd.engine.sampling import SamplingParams
from orcd.errors import Cancelled, CudaError, InternalError

GREEDY = SamplingParams(temperature=0.0)
CTX = 512


class FakeModel:
    """DeviceModel's job calls: a job answers `answer` ids at once (or fails with `error`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[int], int]] = []  # (prompt as start_job saw it, n_cached)
        self.answer: list[int] = []
        self.error: Exception | None = None
        self.refuse: Exception | None = None  # start_job raises it
        self.running = False

    def start_job(self, prompt_ids, params, max_tokens, stop_ids, n_cached=0, top_logprobs=-1,
                  prompt_logprobs=False, constrained=False):
        if self.refuse is not None:
            raise self.refuse
        p = np.ascontiguousarray(prompt_ids, dtype=np.int32)  # as the binding reads it
        self.sent.append((p.tolist(), n_cached))
        self.running = True

    def job_running(self) -> bool:
        return self.running

    def read_tokens(self, start, timeout_ms, top_n=-1):
        self.running = False
        ids = [] if self.error is not None else self.answer[start:]
        if top_n < 0:
            return ids, True
        return ids, [TokenLogprob(i, 0.0, ()) for i in ids], True

    def job_error(self, wait=False):
        return self.error if not self.running else None

    def cancel(self) -> None:
        self.running = False

    def prompt_logprobs(self, n, top_n):
        return []

    def forward_logits(self, ids):
        return np.zeros((len(ids), 4), np.float32)

    def stats(self) -> dict:
        return {"vram_bytes_used": 0}

    def resident(self) -> bool:
        return True


def fake_engine() -> CudaEngine:
    """A CudaEngine as load() leaves it, on the stand-in."""
    engine = CudaEngine.__new__(CudaEngine)
    Engine.__init__(engine)
    engine.ctx, engine._model, engine._health = CTX, FakeModel(), {}
    engine._rows, engine._rows_hold = np.empty(CTX, np.int32), None
    return engine


def run(engine, prompt, n_cached, scoring=None, stop_after=None):
    stream = engine.generate(prompt, GREEDY, 8, set(), threading.Event(), n_cached, scoring)
    out = []
    for token in stream:
        out.append(token)
        if stop_after is not None and len(out) == stop_after:
            stream.close()
            break
    return out


def test_each_job_sends_its_whole_prompt_and_the_cache_keeps_its_rows():
    rng = random.Random(17)
    engine = fake_engine()
    model = engine._model
    prompt = [rng.randrange(1000) for _ in range(40)]
    converted_part = 0
    for turn in range(400):
        model.answer = [rng.randrange(1000) for _ in range(rng.randrange(0, 6))]
        model.error = CudaError("a step failed") if rng.random() < 0.05 else None
        n = engine.reusable_prefix(prompt)
        converted_part += engine._rows_hold is engine.cached_ids and n > 0
        scoring = Scoring(top_n=0, with_prompt=True) if rng.random() < 0.05 else None
        stop_after = rng.randrange(1, 3) if rng.random() < 0.1 and model.answer else None
        try:
            answer = run(engine, prompt, n, scoring, stop_after)
        except CudaError:
            answer = []
        sent, n_sent = model.sent[-1]
        assert sent == prompt and n_sent == (0 if scoring else n), turn
        if rng.random() < 0.05:
            engine.forward_logits([1, 2, 3])
        if rng.random() < 0.05:  # set from outside (as tests do): the rows hold other ids
            engine.cached_ids = list(engine.cached_ids[:rng.randrange(len(engine.cached_ids) + 1)])
        what = rng.random()
        if what < 0.6:  # the next turn: this one, its answer and more
            prompt = prompt + answer + [rng.randrange(1000) for _ in range(rng.randrange(1, 8))]
        elif what < 0.8:  # an edit somewhere
            cut = rng.randrange(1, len(prompt))
            prompt = prompt[:cut] + [rng.randrange(1000) for _ in range(rng.randrange(1, 8))]
        else:  # something else
            prompt = [rng.randrange(1000) for _ in range(rng.randrange(3, 60))]
        if len(prompt) > CTX - 20:
            prompt = prompt[-100:]
    assert converted_part > 150  # most jobs converted only the ids past the cached ones


def test_a_refused_start_leaves_the_cache_as_before_and_the_next_job_whole():
    engine = fake_engine()
    model = engine._model
    model.answer = [7, 8, 9]
    first = list(range(10, 40))
    run(engine, first, 0)
    longer = first + [7, 8, 9, 1, 2]
    n = engine.reusable_prefix(longer)
    model.refuse = CudaError("a job is still running on the engine")
    with pytest.raises(CudaError):
        run(engine, longer, n)
    assert engine.cached_ids == longer[:n]
    model.refuse = None
    other = longer[:5] + [99] * 10
    run(engine, other, engine.reusable_prefix(other))
    assert model.sent[-1][0] == other


def test_more_cached_rows_than_the_cache_holds_are_refused_before_anything_is_sent():
    engine = fake_engine()
    engine._model.answer = [4]
    run(engine, [5, 6, 7, 8], 0)
    with pytest.raises(InternalError, match="cache"):
        run(engine, [5, 6, 9, 10, 11], 3)
    assert len(engine._model.sent) == 1


def test_a_job_cancelled_before_it_starts_sends_nothing():
    engine = fake_engine()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        list(engine.generate([1, 2, 3], GREEDY, 4, set(), cancel))
    assert engine._model.sent == []


def test_a_job_that_ends_after_a_later_one_started_claims_no_rows():
    """Two jobs' generators open at once (the C engine refuses a second running job, but one
    whose ids are all out may still be open): the first to start ends last, and its prompt's
    rows were written over by the second's."""
    engine = fake_engine()
    model = engine._model
    first, second = list(range(100, 140)), list(range(100, 110)) + [1] * 30
    model.answer = [5, 6, 7]
    a = engine.generate(first, GREEDY, 8, set(), threading.Event())
    assert next(a) == 5
    run(engine, second, 0)
    a.close()  # its finally: cached_ids = first + [5]
    third = first + [5, 6, 7, 8]
    run(engine, third, engine.reusable_prefix(third))
    assert model.sent[-1][0] == third
