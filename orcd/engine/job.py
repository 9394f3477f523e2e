"""One generation job: token ids from an engine become the SPEC §2 stream events.

    ("prompt_logprobs", {"logprobs": [None, entry, ...]})   only when scoring.with_prompt,
                                     before the first token event: one per prompt token
    ("token", {"t": text, "i": n})   n = 0, 1, 2 ... per event; t is never empty and always
                                     whole UTF-8 characters; text that could still start a stop
                                     string is held back, a matched stop string never sent.
                                     With a Scoring, "logprobs": the entries of the tokens
                                     whose text the event carries (one event may carry several)
    ("end", {"tokens_out", "decode_time_ms", "stop_reason", "prompt_tokens"})

An entry is {"id", "token", "logprob", "text_offset", "top_logprobs": [{"id", "token",
"logprob"}]}: text_offset counts the characters of the (prompt or generated) text before it.

The server emits `started` itself before iterating; errors propagate as OrcdError
(Cancelled when `cancel` is set).
"""
from __future__ import annotations

import threading
import time
from typing import Iterator

from orcd.engine.logprobs import Scoring, TokenLogprob
from orcd.engine.sampling import SamplingParams
from orcd.engine.stop import StopMatcher
from orcd.errors import Cancelled


def run_job(engine, tokenizer, prompt, params: SamplingParams, max_tokens: int,
            stop_strings: list[str], cancel: threading.Event, n_cached: int = 0,
            scoring: Scoring | None = None, constraint=None,
            skip_special: bool = True, on_start=None) -> Iterator[tuple[str, dict]]:
    """`prompt` is token ids or text, as engine.prompt_ids reads them; the KV cache holds its
    first n_cached (Engine.generate). decode_time_ms covers prefill and every decode step.
    `scoring` asks for logprobs (orcd.engine.logprobs); `constraint` (orcd.engine.constraint)
    limits each next token. The text of control tokens the model generates (e.g. <|im_start|>)
    is left out of the token events unless skip_special is False, as llama-server and vLLM do."""
    prompt_ids = engine.prompt_ids(prompt)
    end_ids = set(tokenizer.eot_ids) | ({tokenizer.eos_id} if tokenizer.eos_id is not None else set())
    decoder = matcher = events = None

    def started() -> None:
        """The engine runs the job (Engine.generate calls this before its first id): the text
        side is made while the device prefills, not before the launch (with the CPU's caches
        cold, as a decode leaves them: 20 us of the first token; 1.3 warm)."""
        nonlocal decoder, matcher, events
        decoder, matcher = tokenizer.stream_decoder(skip_special), StopMatcher(stop_strings)
        events = _TokenEvents(tokenizer if scoring is not None else None)
        if on_start is not None:
            on_start()

    tokens_out, stop_reason = 0, "max_tokens"
    start = time.perf_counter()
    tokens = engine.generate(prompt_ids, params, max_tokens, end_ids, cancel, n_cached, scoring,
                             constraint, on_start=started)
    try:
        for token in tokens:
            if scoring is not None and scoring.with_prompt and tokens_out == 0:
                yield "prompt_logprobs", prompt_event(tokenizer, prompt_ids, scoring.prompt)
            tokens_out += 1
            if cancel.is_set():
                raise Cancelled("the job was cancelled")
            if token in end_ids:
                stop_reason = "eos"
                break
            text = decoder.feed(token)
            if scoring is not None:
                events.scored(scoring.generated[tokens_out - 1], len(text))
            yield from events.emit(matcher.feed(text))
            if matcher.stopped:
                stop_reason = "stop"
                break
    finally:
        tokens.close()
    if scoring is not None and scoring.with_prompt and tokens_out == 0:
        yield "prompt_logprobs", prompt_event(tokenizer, prompt_ids, scoring.prompt)
    if stop_reason != "stop":
        yield from events.emit(matcher.feed(decoder.flush()))
        if matcher.stopped:
            stop_reason = "stop"
        else:
            yield from events.emit(matcher.flush())
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    yield "end", {"tokens_out": tokens_out, "decode_time_ms": round(elapsed_ms, 3),
                  "stop_reason": stop_reason, "prompt_tokens": len(prompt_ids)}


def logprob_entry(tokenizer, lp: TokenLogprob, text_offset: int) -> dict:
    return {"id": lp.id, "token": token_text(tokenizer, lp.id), "logprob": lp.logprob,
            "text_offset": text_offset,
            "top_logprobs": [{"id": i, "token": token_text(tokenizer, i), "logprob": v} for i, v in lp.top]}


def token_text(tokenizer, token: int) -> str:
    """A token's own text; a piece that ends inside a code point shows U+FFFD for its bytes."""
    return tokenizer.piece_bytes(token).decode("utf-8", "replace")


def prompt_event(tokenizer, prompt_ids: list[int], scored: list[TokenLogprob]) -> dict:
    """The first token has no logprob (nothing predicts it); text offsets follow the prompt's
    decoded text."""
    decoder, offset, entries = tokenizer.stream_decoder(), 0, []
    for k, token in enumerate(prompt_ids):
        if k == 0:
            entries.append({"id": token, "token": token_text(tokenizer, token), "logprob": None,
                            "text_offset": 0, "top_logprobs": None})
        else:
            entries.append(logprob_entry(tokenizer, scored[k - 1], offset))
        offset += len(decoder.feed(token))
    return {"logprobs": entries}


class _TokenEvents:
    """Numbers the token events; empty text makes none. With a tokenizer, each event carries
    the logprob entries of the tokens fed since the previous event."""

    def __init__(self, tokenizer=None) -> None:
        self.count = 0
        self.tokenizer = tokenizer
        self.pending: list[dict] = []
        self.offset = 0  # characters the decoder has produced before the next token

    def scored(self, lp: TokenLogprob, chars: int) -> None:
        self.pending.append(logprob_entry(self.tokenizer, lp, self.offset))
        self.offset += chars

    def emit(self, text: str):
        if text:
            data = {"t": text, "i": self.count}
            if self.tokenizer is not None:
                data["logprobs"], self.pending = self.pending, []
            yield "token", data
            self.count += 1
