"""CpuEngine: the NumPy reference forward pass behind the Engine interface (development, CI)."""
from __future__ import annotations

import pathlib
import threading
import time
from typing import Iterator

import orcd.gguf
import orcd.tokenizer
# The CUDA engine's prompt tokens per forward call, here too: it bounds the attention scores
# (chunk x context x heads floats) and lets a cancel land between chunks of a long prompt.
from orcd._cuda import PREFILL_CHUNK
from orcd.engine.base import Engine, context_for, quant_kind
from orcd.engine.constraint import masked
from orcd.engine.logprobs import Scoring, next_token_logprobs, token_logprob
from orcd.engine.sampling import SamplingParams, sample
from orcd.errors import Cancelled
from orcd.models import describe
from orcd.reference import KVCache, forward, load


class CpuEngine(Engine):
    device = "cpu"

    def __init__(self) -> None:
        super().__init__()
        self.model = None
        self.cache: KVCache | None = None
        self._health: dict = {}
        self._marks: dict[str, int] = {}  # job_marks

    def load(self, path, ctx=None, progress_cb=None, tokenizer_json=None) -> None:
        path = pathlib.Path(path)
        with orcd.gguf.open(path) as f:
            config, kind = describe(f), quant_kind(f)
        self.tokenizer = orcd.tokenizer.load(path, tokenizer_json)
        self.model = load(path, context_for(config, ctx), progress_cb)
        self.config, self.ctx = self.model.config, self.model.ctx
        self.cache = KVCache(self.config, self.model.ctx)
        self.cached_ids = []
        self._health = {"arch": self.config.arch, "model": path.name, "quant_kind": kind,
                        "vram_bytes_used": 0, "context_length": self.model.ctx, "device": "cpu",
                        "resident": True}

    def generate(self, prompt_ids: list[int], params: SamplingParams, max_tokens: int,
                 stop_ids: set[int], cancel: threading.Event, n_cached: int = 0,
                 scoring: Scoring | None = None, constraint=None, on_start=None) -> Iterator[int]:
        prompt_ids = self.prompt_ids(prompt_ids)
        self._check_cached(prompt_ids, n_cached)
        self._marks = {}
        if on_start is not None:
            on_start()
        self._marks["engine_entered"] = time.perf_counter_ns()
        history = list(prompt_ids)
        every_position = scoring is not None and scoring.with_prompt
        if every_position:
            n_cached = 0  # every prompt row's logits are needed
        self.cache.truncate(n_cached)
        try:
            for start in range(n_cached, len(prompt_ids), PREFILL_CHUNK):
                _check(cancel)
                chunk = forward(self.model, prompt_ids[start:start + PREFILL_CHUNK], self.cache,
                                last_only=not every_position)
                if every_position:
                    scoring.prompt += next_token_logprobs(
                        chunk, prompt_ids[start + 1:start + 1 + PREFILL_CHUNK], scoring.top_n)
                logits = chunk[-1]
            self._marks["engine_prefilled"] = time.perf_counter_ns()
            for step in range(max_tokens):
                _check(cancel)
                allowed = masked(logits, constraint.allowed()) if constraint is not None else logits
                token = sample(allowed, params, step, history)
                if step == 0:
                    self._marks["engine_first_id"] = time.perf_counter_ns()
                if scoring is not None:
                    scoring.generated.append(token_logprob(logits, token, scoring.top_n))
                if constraint is not None:
                    constraint.consume(token)
                yield token
                if token in stop_ids or self.cache.length == self.model.ctx:
                    return
                history.append(token)
                if step + 1 < max_tokens:
                    logits = forward(self.model, [token], self.cache)[-1]
        finally:  # a forward pass that did not finish advanced no row
            self.cached_ids = history[:self.cache.length]

    def job_marks(self) -> dict[str, int]:
        """The running job's stamps: entered (its host work done, before the prefill),
        prefilled (the prompt's forward passes done) and first_id (the first id sampled)."""
        return dict(self._marks)

    def health(self) -> dict:
        return dict(self._health)

    def close(self) -> None:
        self.model = self.cache = None
        self.cached_ids = []


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled("the job was cancelled")
