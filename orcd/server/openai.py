"""OpenAI-compatible routes: /v1/completions, /v1/chat/completions, /v1/models.

They reuse the /execute validation and job runner; only the request fields and the response
shape are OpenAI's. Options OpenAI has and we do not (n > 1, logprobs, penalties other than
repetition) are refused with 400 rather than ignored, so a client never gets a silent
approximation.
"""
from __future__ import annotations

import json
import time
import uuid

import jinja2

from orcd.errors import OrcdError, invalid
from orcd.server.handlers import event_stream, json_body, traced_request
from orcd.server.schema import (GenerationRequest, MAX_PROMPT_CHARS, bool_field, max_tokens_field,
                                sampling_params, stop_field, text_field)
from orcd.server.sse import data_frame

OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS = 16
SAMPLING_FIELDS = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed"}
COMMON_FIELDS = SAMPLING_FIELDS | {"model", "max_tokens", "stop", "stream", "stream_options", "user",
                                   "cache_prompt"}
# OpenAI options accepted only at the value that means "off".
NEUTRAL = {"n": 1, "best_of": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False,
           "echo": False, "suffix": None, "logit_bias": {}, "top_logprobs": 0}
COMPLETION_FIELDS = COMMON_FIELDS | {"prompt"}
CHAT_FIELDS = COMMON_FIELDS | {"messages", "max_completion_tokens"}
DONE = data_frame("[DONE]")
FINISH_REASON = {"max_tokens": "length", "eos": "stop", "stop": "stop"}
ERROR_TYPE = {"INVALID_REQUEST": "invalid_request_error", "WORKER_BUSY": "server_busy_error",
              "INFERENCE_TIMEOUT": "timeout_error", "CANCELLED": "cancelled_error",
              "VRAM_OOM": "server_error", "CUDA_ERROR": "server_error", "INTERNAL": "server_error"}


def error_body(error: OrcdError) -> dict:
    return {"error": {"message": error.message, "type": ERROR_TYPE.get(error.code, "server_error"),
                      "code": error.code, "param": getattr(error, "field", None)}}


def register(app, state) -> None:
    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": state.model, "object": "model",
                                            "created": int(state.metrics.started_wall),
                                            "owned_by": "orcd"}]}

    @app.post("/v1/completions")
    async def completions():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        check_fields(body, COMPLETION_FIELDS)
        prompt = completion_prompt(body)
        request = generation_request(body, prompt, state, "cmpl",
                                     default_max_tokens=OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS)
        if trace is not None:
            trace.mark("parsed")
        return await respond(body, request, accepted_at, trace, state, TextCompletion)

    @app.post("/v1/chat/completions")
    async def chat_completions():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        check_fields(body, CHAT_FIELDS)
        if "max_completion_tokens" in body:  # the newer name of max_tokens
            body["max_tokens"] = body.pop("max_completion_tokens")
        prompt = chat_prompt(state.engine.tokenizer, chat_messages(body))
        request = generation_request(body, prompt, state, "chatcmpl",
                                     default_max_tokens=state.runner.max_tokens_out)
        if trace is not None:
            trace.mark("parsed")
        return await respond(body, request, accepted_at, trace, state, ChatCompletion)


def check_fields(body: dict, allowed: set[str]) -> None:
    for field, value in body.items():
        if field in allowed:
            continue
        if field not in NEUTRAL:
            raise invalid(field, "unknown or unsupported field")
        if value is not None and value != NEUTRAL[field]:
            raise invalid(field, f"only {json.dumps(NEUTRAL[field])} is supported")
    if not isinstance(body.get("stream", False), bool):
        raise invalid("stream", "must be a boolean")
    if not isinstance(body.get("stream_options") or {}, dict):
        raise invalid("stream_options", "must be an object")


def completion_prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        body = {"prompt": prompt[0]}
    elif isinstance(prompt, list):
        raise invalid("prompt", "a list must hold exactly one string (one completion per request)")
    return text_field(body, "prompt", MAX_PROMPT_CHARS)


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    try:
        return tokenizer.apply_chat_template(messages)
    except jinja2.TemplateError as e:  # the GGUF's template refused these messages
        raise invalid("messages", f"the model's chat template rejected them: {e}") from None


def chat_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "must be a non-empty list of {role, content}")
    return [chat_message(m) for m in messages]


def chat_message(message) -> dict:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise invalid("messages", "every message must be an object with a string role")
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) and p.get("type") == "text" else None for p in content]
        if None in parts:
            raise invalid("messages", "only text content parts are supported")
        content = "".join(parts)
    if not isinstance(content, str):
        raise invalid("messages", "content must be a string or a list of text parts")
    return {"role": message["role"], "content": content}


def generation_request(body: dict, prompt: str, state, prefix: str, default_max_tokens: int):
    stop = body.get("stop")
    native = {"stop": [stop] if isinstance(stop, str) else (stop or [])}
    native.update({k: body[k] for k in SAMPLING_FIELDS | {"max_tokens"} if k in body and body[k] is not None})
    return GenerationRequest(
        job_id=f"{prefix}-{uuid.uuid4().hex}", prompt=prompt,
        max_tokens=max_tokens_field(native, "max_tokens", state.runner.max_tokens_out, default_max_tokens),
        stop=stop_field(native, "stop"), params=sampling_params(native, state.vocab_size),
        cache_prompt=bool_field(body, "cache_prompt", True))


async def respond(body: dict, request, accepted_at: float, trace, state, shape):
    completion = shape(request.job_id, state.model)
    if body.get("stream", False):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        encode = StreamEncoder(completion, include_usage)
        job = await state.runner.start(request, accepted_at, encode, trace)
        return event_stream(state, job, {"Cache-Control": "no-cache"})
    job = await state.runner.start(request, accepted_at, None, trace)
    text = []
    try:
        async for kind, data in job.events():
            if kind == "started":
                completion.started(data)
            elif kind == "token":
                text.append(data["t"])
            elif kind == "error":
                error = as_error(data)
                return error_body(error), error.http_status
            else:
                return completion.whole("".join(text), data)
    finally:
        state.runner.abandon(job)


class StreamEncoder:
    """OpenAI's stream, frame by frame (run on the engine thread for tokens): `data: <chunk>`,
    an error as `data: {"error": ...}`, and `data: [DONE]` after the terminal event."""

    def __init__(self, completion, include_usage: bool):
        self.completion, self.include_usage = completion, include_usage

    def __call__(self, kind: str, data: dict) -> bytes:
        c = self.completion
        if kind == "token":
            return data_frame(json.dumps(c.chunk(data["t"], None), ensure_ascii=False))
        if kind == "started":
            c.started(data)
            return b"".join(data_frame(json.dumps(chunk, ensure_ascii=False)) for chunk in c.opening())
        if kind == "error":
            return data_frame(json.dumps(error_body(as_error(data)))) + DONE
        frames = data_frame(json.dumps(c.chunk("", FINISH_REASON[data["stop_reason"]])))
        if self.include_usage:
            frames += data_frame(json.dumps(c.usage_chunk(data)))
        return frames + DONE


def as_error(data: dict) -> OrcdError:
    return OrcdError(data["message"], code=data["code"])


def usage(end: dict, prompt_tokens: int, cached_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": end["tokens_out"],
            "total_tokens": prompt_tokens + end["tokens_out"],
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


class TextCompletion:
    object = "text_completion"

    def __init__(self, job_id: str, model: str):
        self.id, self.model, self.created = job_id, model, int(time.time())
        self.prompt_tokens = self.cached_tokens = 0

    def started(self, data: dict) -> None:
        self.prompt_tokens, self.cached_tokens = data["prompt_tokens"], data["cached_tokens"]

    def head(self) -> dict:
        return {"id": self.id, "object": self.object, "created": self.created, "model": self.model}

    def opening(self) -> list[dict]:
        return []

    def choice(self, text: str, finish_reason) -> dict:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}

    def chunk(self, text: str, finish_reason) -> dict:
        return {**self.head(), "choices": [self.choice(text, finish_reason)]}

    def usage_chunk(self, end: dict) -> dict:
        return {**self.head(), "choices": [], "usage": usage(end, self.prompt_tokens, self.cached_tokens)}

    def whole(self, text: str, end: dict) -> dict:
        return {**self.head(), "choices": [self.choice(text, FINISH_REASON[end["stop_reason"]])],
                "usage": usage(end, self.prompt_tokens, self.cached_tokens)}


class ChatCompletion(TextCompletion):
    object = "chat.completion.chunk"

    def opening(self) -> list[dict]:
        return [{**self.head(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "logprobs": None, "finish_reason": None}]}]

    def chunk(self, text: str, finish_reason) -> dict:
        delta = {"content": text} if text else {}
        return {**self.head(), "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                            "finish_reason": finish_reason}]}

    def whole(self, text: str, end: dict) -> dict:
        message = {"role": "assistant", "content": text}
        return {**self.head(), "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": FINISH_REASON[end["stop_reason"]]}],
                "usage": usage(end, self.prompt_tokens, self.cached_tokens)}
