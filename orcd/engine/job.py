"""One generation job: token ids from an engine become the SPEC §2 stream events.

    ("token", {"t": text, "i": n})   n = 0, 1, 2 ... per event; t is never empty and always
                                     whole UTF-8 characters; text that could still start a stop
                                     string is held back, a matched stop string never sent
    ("end", {"tokens_out", "decode_time_ms", "stop_reason", "prompt_tokens"})

The server emits `started` itself before iterating; errors propagate as OrcdError
(Cancelled when `cancel` is set).
"""
from __future__ import annotations

import threading
import time
from typing import Iterator

from orcd.engine.sampling import SamplingParams
from orcd.engine.stop import StopMatcher
from orcd.errors import Cancelled


def run_job(engine, tokenizer, prompt, params: SamplingParams, max_tokens: int,
            stop_strings: list[str], cancel: threading.Event,
            n_cached: int = 0) -> Iterator[tuple[str, dict]]:
    """`prompt` is token ids or text, as engine.prompt_ids reads them; the KV cache holds its
    first n_cached (Engine.generate). decode_time_ms covers prefill and every decode step."""
    prompt_ids = engine.prompt_ids(prompt)
    end_ids = set(tokenizer.eot_ids) | ({tokenizer.eos_id} if tokenizer.eos_id is not None else set())
    decoder, matcher = tokenizer.stream_decoder(), StopMatcher(stop_strings)
    events = _TokenEvents()
    tokens_out, stop_reason = 0, "max_tokens"
    start = time.perf_counter()
    tokens = engine.generate(prompt_ids, params, max_tokens, end_ids, cancel, n_cached)
    try:
        for token in tokens:
            tokens_out += 1
            if cancel.is_set():
                raise Cancelled("the job was cancelled")
            if token in end_ids:
                stop_reason = "eos"
                break
            yield from events.emit(matcher.feed(decoder.feed(token)))
            if matcher.stopped:
                stop_reason = "stop"
                break
    finally:
        tokens.close()
    if stop_reason != "stop":
        yield from events.emit(matcher.feed(decoder.flush()))
        if matcher.stopped:
            stop_reason = "stop"
        else:
            yield from events.emit(matcher.flush())
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    yield "end", {"tokens_out": tokens_out, "decode_time_ms": round(elapsed_ms, 3),
                  "stop_reason": stop_reason, "prompt_tokens": len(prompt_ids)}


class _TokenEvents:
    """Numbers the token events; empty text makes none."""

    def __init__(self) -> None:
        self.count = 0

    def emit(self, text: str):
        if text:
            yield "token", {"t": text, "i": self.count}
            self.count += 1
