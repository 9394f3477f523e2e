"""The response shapes of the OpenAI routes: whole answers, stream chunks, usage, logprobs and
errors, built from the job events of orcd/engine/job.py."""
from __future__ import annotations

import dataclasses
import time

from orcd.engine.logprobs import MAX_TOP_LOGPROBS
from orcd.errors import ContextOverflow, OrcdError
from orcd.server.markup import parse, parser_of
from orcd.server.markup.deltas import Plain

__all__ = ["MAX_TOP_LOGPROBS", "Result", "Usage", "TextCompletion", "ChatCompletion", "error_body"]

FINISH_REASON = {"max_tokens": "length", "eos": "stop", "stop": "stop"}
ERROR_TYPE = {"INVALID_REQUEST": "invalid_request_error", "WORKER_BUSY": "server_busy_error",
              "INFERENCE_TIMEOUT": "timeout_error", "CANCELLED": "cancelled_error",
              "VRAM_OOM": "server_error", "CUDA_ERROR": "server_error", "INTERNAL": "server_error"}


def error_body(error: OrcdError) -> dict:
    # LangChain and litellm raise their context-window errors on OpenAI's code
    code = "context_length_exceeded" if isinstance(error, ContextOverflow) else error.code
    return {"error": {"message": error.message, "type": ERROR_TYPE.get(error.code, "server_error"),
                      "code": code, "param": getattr(error, "field", None)}}


@dataclasses.dataclass
class Result:
    """What one job produced, gathered from its events."""
    text: list[str] = dataclasses.field(default_factory=list)
    entries: list[dict] | None = None         # logprob entries of the generated text
    prompt_entries: list[dict] | None = None  # and of the prompt (echo)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    end: dict | None = None

    def add(self, kind: str, data: dict) -> None:
        if kind == "started":
            self.prompt_tokens, self.cached_tokens = data["prompt_tokens"], data["cached_tokens"]
        elif kind == "prompt_logprobs":
            self.prompt_entries = data["logprobs"]
        elif kind == "token":
            self.text.append(data["t"])
            if "logprobs" in data:
                self.entries = (self.entries or []) + data["logprobs"]
        elif kind == "end":
            self.end = data

    @property
    def finish_reason(self) -> str:
        return FINISH_REASON[self.end["stop_reason"]]


@dataclasses.dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def add(self, result: Result, new_prompt: bool) -> None:
        """n samples of one prompt count its tokens once."""
        if new_prompt:
            self.prompt_tokens += result.prompt_tokens
            self.cached_tokens += result.cached_tokens
        self.completion_tokens += result.end["tokens_out"]

    def body(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}


def usage_of(results: list[Result], n: int) -> Usage:
    usage = Usage()
    for index, result in enumerate(results):
        usage.add(result, index % n == 0)
    return usage


class TextCompletion:
    object = "text_completion"

    def __init__(self, completion_id: str, model: str, tokenizer):
        self.id, self.model, self.created = completion_id, model, int(time.time())
        self.tokenizer = tokenizer

    def head(self, obj: str | None = None) -> dict:
        return {"id": self.id, "object": obj or self.object, "created": self.created, "model": self.model}

    def whole(self, plan, results: list[Result]) -> dict:
        choices = []
        for index, r in enumerate(results):
            prompt = plan.prompts[index // plan.n] if plan.echo else ""
            logprobs = None
            if r.entries is not None or r.prompt_entries is not None or plan.choices[index].logprobs is not None:
                logprobs = self.logprobs((r.prompt_entries or []) if plan.echo else [], r.entries or [],
                                         len(prompt))
            choices.append({"index": index, "text": prompt + "".join(r.text), "logprobs": logprobs,
                            "finish_reason": r.finish_reason})
        return {**self.head(), "choices": choices, "usage": usage_of(results, plan.n).body()}

    def logprobs(self, prompt_entries: list[dict], entries: list[dict], offset: int) -> dict:
        """The legacy completions shape: parallel lists; text_offset counts characters of the
        choice's text (the echoed prompt first)."""
        shifted = [(e, e["text_offset"]) for e in prompt_entries] + [(e, offset + e["text_offset"]) for e in entries]
        return {"tokens": [e["token"] for e, _ in shifted],
                "token_logprobs": [e["logprob"] for e, _ in shifted],
                "top_logprobs": [None if e["top_logprobs"] is None else
                                 {t["token"]: t["logprob"] for t in e["top_logprobs"]} for e, _ in shifted],
                "text_offset": [o for _, o in shifted]}

    def chunk(self, index: int, text: str, finish_reason, logprobs=None) -> dict:
        return {**self.head(), "choices": [{"index": index, "text": text, "logprobs": logprobs,
                                            "finish_reason": finish_reason}]}

    def streamed_choice(self, index: int, plan) -> "StreamedText":
        return StreamedText(self, index, plan.prompts[index // plan.n] if plan.echo else None,
                            plan.choices[index].logprobs is not None)

    def usage_chunk(self, usage: Usage) -> dict:
        return {**self.head(), "choices": [], "usage": usage.body()}


class StreamedText:
    """One choice of a streamed text completion: chunks from its job's events."""

    def __init__(self, completion: TextCompletion, index: int, echo: str | None, with_logprobs: bool):
        self.completion, self.index, self.echo, self.with_logprobs = completion, index, echo, with_logprobs
        self.result = Result()
        self.offset = len(echo or "")

    def chunks(self, kind: str, data: dict) -> list[dict]:
        self.result.add(kind, data)
        c = self.completion
        if self.echo is not None and (kind == "prompt_logprobs" or (kind == "started" and not self.with_logprobs)):
            lp = c.logprobs(data["logprobs"], [], 0) if kind == "prompt_logprobs" else None
            return [c.chunk(self.index, self.echo, None, lp)]
        if kind == "token":
            lp = c.logprobs([], data["logprobs"], self.offset) if self.with_logprobs else None
            return [c.chunk(self.index, data["t"], None, lp)]
        if kind == "end":
            return [c.chunk(self.index, "", self.result.finish_reason)]
        return []

    def plain_text(self, kind: str, data: dict) -> str | None:
        """The text of a token whose only chunk is text_chunk(text), recorded as chunks()
        records it; None for any other event, which chunks() then makes."""
        if kind != "token" or self.with_logprobs:
            return None
        self.result.add(kind, data)
        return data["t"]

    def text_chunk(self, text: str) -> dict:
        return self.completion.chunk(self.index, text, None)


class ChatCompletion(TextCompletion):
    object = "chat.completion.chunk"

    def whole(self, plan, results: list[Result]) -> dict:
        choices = []
        for index, r in enumerate(results):
            message = parse(parser_of(plan.markup, plan.tool_names), "".join(r.text))
            choices.append({"index": index, "message": message,
                            "finish_reason": finish_reason("tool_calls" in message, r),
                            "logprobs": self.logprobs_of(r.entries) if plan.choices[index].logprobs is not None else None})
        return {**self.head("chat.completion"), "choices": choices, "usage": usage_of(results, plan.n).body()}

    def logprobs_of(self, entries: list[dict] | None) -> dict:
        return {"content": [self.content_logprob(e) for e in entries or []], "refusal": None}

    def content_logprob(self, e: dict) -> dict:
        return {**self.token_logprob(e), "top_logprobs": [self.token_logprob(t) for t in e["top_logprobs"]]}

    def token_logprob(self, e: dict) -> dict:
        return {"token": e["token"], "logprob": e["logprob"], "bytes": list(self.tokenizer.piece_bytes(e["id"]))}

    def chunk(self, index: int, delta: dict, finish_reason, logprobs=None) -> dict:
        return {**self.head(), "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                            "finish_reason": finish_reason}]}

    def streamed_choice(self, index: int, plan) -> "StreamedChat":
        return StreamedChat(self, index, plan.choices[index].logprobs is not None,
                            parser_of(plan.markup, plan.tool_names))


def finish_reason(called: bool, result: Result) -> str:
    """tool_calls when the answer made calls, unless it was cut short (length)."""
    if called and result.finish_reason != "length":
        return "tool_calls"
    return result.finish_reason


class StreamedChat:
    """One choice of a streamed chat answer: the deltas of the template's markup parser
    (orcd/server/markup), a call's name first, then its arguments piece by piece."""

    def __init__(self, completion: ChatCompletion, index: int, with_logprobs: bool, parser):
        self.completion, self.index, self.with_logprobs = completion, index, with_logprobs
        self.parser = parser
        self.called = False
        self.result = Result()

    def chunks(self, kind: str, data: dict) -> list[dict]:
        self.result.add(kind, data)
        c = self.completion
        if kind == "started":
            return [c.chunk(self.index, {"role": "assistant", "content": ""}, None)]
        if kind == "token":
            lp = c.logprobs_of(data["logprobs"]) if self.with_logprobs else None
            return self.deltas(self.parser.feed(data["t"]), lp)
        if kind == "end":
            ending = self.deltas(self.parser.finish(), None)
            return ending + [c.chunk(self.index, {}, finish_reason(self.called, self.result))]
        return []

    def plain_text(self, kind: str, data: dict) -> str | None:
        """As StreamedText.plain_text: a non-empty token of an answer without markup, whose
        only chunk is its text as content."""
        if kind != "token" or self.with_logprobs or not data["t"] or not isinstance(self.parser, Plain):
            return None
        self.result.add(kind, data)
        return data["t"]

    def text_chunk(self, text: str) -> dict:
        return self.completion.chunk(self.index, {"content": text}, None)

    def deltas(self, deltas: list[dict], lp) -> list[dict]:
        """A chunk per delta, the token's logprobs on the first (alone when the parser holds
        the text)."""
        self.called = self.called or any("tool_calls" in d for d in deltas)
        c = self.completion
        if not deltas:
            return [c.chunk(self.index, {}, None, lp)] if lp else []
        return [c.chunk(self.index, d, None, lp if k == 0 else None) for k, d in enumerate(deltas)]
