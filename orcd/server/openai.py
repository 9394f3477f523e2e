"""OpenAI-compatible routes: /v1/completions, /v1/chat/completions, /v1/models[/{id}].

They reuse the /execute validation and job runner; only the request fields and the response
shapes (orcd/server/openai_shapes.py) are OpenAI's. A request waits for the job slot in the
FIFO queue (orcd/server/waitqueue.py). Several prompts and n > 1 run as jobs one after another,
choice i with seed + i. Options that ask for what we lack (presence and frequency penalties,
logit_bias, suffix, best_of) are refused with 400 rather than ignored, so a client never gets
a silent approximation.
"""
from __future__ import annotations

import dataclasses
import json
import time
import uuid

from quart import Response, abort

from orcd.engine.grammar import json_schema_grammar
from orcd.errors import ContextOverflow, OrcdError, invalid
from orcd.server import openai_shapes as shapes
from orcd.server import tools
from orcd.server.handlers import json_body, traced_request
from orcd.server.schema import (MAX_PROMPT_CHARS, MAX_TOKENS_LIMIT, UINT64_MAX, GenerationRequest,
                                bool_field, int_field, json_type, sampling_params, stop_field,
                                text_field)
from orcd.server.sse import data_frame

OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS = 16
MAX_CHOICES = 64  # prompts x n of one request, served one after another
SAMPLING_FIELDS = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed"}
COMMON_FIELDS = SAMPLING_FIELDS | {"model", "max_tokens", "stop", "stream", "stream_options", "user", "n",
                                   "cache_prompt"}
# OpenAI options accepted only at the value that means "off".
NEUTRAL = {"best_of": 1, "presence_penalty": 0, "frequency_penalty": 0, "suffix": None,
           "logit_bias": {}, "store": False}
COMPLETION_FIELDS = COMMON_FIELDS | {"prompt", "logprobs", "echo"}
CHAT_FIELDS = COMMON_FIELDS | {"messages", "max_completion_tokens", "logprobs", "top_logprobs",
                               "response_format", "tools", "tool_choice", "parallel_tool_calls"}
ROLES_WITH_OPTIONAL_CONTENT = {"assistant"}  # a tool-call turn carries content: null


@dataclasses.dataclass
class Plan:
    """One OpenAI request as jobs: one GenerationRequest per choice, in choice order."""
    choices: list[GenerationRequest]
    prompts: list[str]  # choice i answers prompts[i // n]
    n: int
    stream: bool
    include_usage: bool
    echo: bool = False
    tool_names: list[str] | None = None  # parse calls of these out of the answers


def register(app, state) -> None:
    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card(state)]}

    @app.get("/v1/models/<path:model_id>")
    async def model(model_id: str):
        if model_id != state.model:
            abort(404)
        return model_card(state)

    @app.post("/v1/completions")
    async def completions():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        check_fields(body, COMPLETION_FIELDS)
        completion = shapes.TextCompletion(new_id("cmpl"), state.model, state.engine.tokenizer)
        return await respond(completion_plan(body, state, completion.id), state, accepted_at, trace, completion)

    @app.post("/v1/chat/completions")
    async def chat_completions():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        check_fields(body, CHAT_FIELDS)
        completion = shapes.ChatCompletion(new_id("chatcmpl"), state.model, state.engine.tokenizer)
        plan = chat_plan(body, state, completion.id)
        try:
            return await respond(plan, state, accepted_at, trace, completion)
        except ContextOverflow as e:  # the prompt is the rendered messages
            raise ContextOverflow("messages", e.tokens, e.ctx) from None


def model_card(state) -> dict:
    return {"id": state.model, "object": "model", "created": int(state.metrics.started_wall),
            "owned_by": "orcd"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def check_fields(body: dict, allowed: set[str]) -> None:
    for field, value in body.items():
        if field in allowed:
            continue
        if field not in NEUTRAL:
            raise invalid(field, "unknown or unsupported field")
        if value is not None and value != NEUTRAL[field]:
            raise invalid(field, f"only {json.dumps(NEUTRAL[field])} is supported")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise invalid("stream", "must be a boolean")
    if not isinstance(body.get("stream_options") or {}, dict):
        raise invalid("stream_options", "must be an object")


def completion_plan(body: dict, state, job_id: str) -> Plan:
    prompts = completion_prompts(body)
    echo = body.get("echo") or False
    if not isinstance(echo, bool):
        raise invalid("echo", f"must be a boolean, got {json_type(echo)}")
    logprobs = body.get("logprobs")
    if isinstance(logprobs, bool):  # some clients send the chat API's boolean here
        raise invalid("logprobs", "must be an integer 0..20 on /v1/completions (the number of alternatives)")
    extras = {"logprobs": top_n_field(body, "logprobs"), "prompt_logprobs": echo}
    if extras["logprobs"] is None:
        extras["prompt_logprobs"] = False
    lowest = 0 if echo else 1  # max_tokens 0 with echo scores the prompt, generating nothing
    return plan_of(body, state, job_id, prompts, OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS, lowest, extras, echo=echo)


def chat_plan(body: dict, state, job_id: str) -> Plan:
    if "max_completion_tokens" in body:  # the newer name of max_tokens
        body["max_tokens"] = body.pop("max_completion_tokens")
    grammar = response_format_grammar(body.get("response_format"))
    if body.get("parallel_tool_calls") is not None and not isinstance(body["parallel_tool_calls"], bool):
        raise invalid("parallel_tool_calls", "must be a boolean")
    tokenizer = state.engine.tokenizer
    calls = tools.tools_of(body, tokenizer)
    if calls is not None and calls.grammar is not None:
        if grammar is not None:
            raise invalid("tool_choice", "a required tool call and a response_format cannot both hold")
        grammar = calls.grammar
    messages = tools.rendered_messages(chat_messages(body, developer_role=has_developer_role(tokenizer)))
    prompt = chat_prompt(tokenizer, messages, **({"tools": calls.tools} if calls else {}))
    plan = plan_of(body, state, job_id, [prompt], state.runner.max_tokens_out, 1,
                   {**chat_logprobs(body), "grammar": grammar})
    plan.tool_names = calls.names if calls else None
    return plan


def plan_of(body: dict, state, job_id: str, prompts: list[str], default_max_tokens: int, lowest: int,
            extras: dict, echo: bool = False) -> Plan:
    """Every choice's job carries the response's id: they run one at a time, and /cancel with
    the id a client saw stops the one running (and so the response)."""
    n = int_field(body, "n", 1) if body.get("n") is not None else 1
    if not 1 <= n <= MAX_CHOICES:
        raise invalid("n", f"must be in 1..{MAX_CHOICES}, got {n}")
    if n * len(prompts) > MAX_CHOICES:
        raise invalid("n", f"{len(prompts)} prompts x n {n} is more than {MAX_CHOICES} choices")
    stop = body.get("stop")
    native = {"stop": [stop] if isinstance(stop, str) else (stop or [])}
    native.update({k: body[k] for k in SAMPLING_FIELDS if body.get(k) is not None})
    params = sampling_params(native, state.vocab_size)
    max_tokens = capped_max_tokens(body, state.runner.max_tokens_out, default_max_tokens, lowest)
    stops = stop_field(native, "stop")
    choices = [GenerationRequest(job_id=job_id, prompt=prompt, max_tokens=max_tokens, stop=stops,
                                 params=dataclasses.replace(params, seed=(params.seed + k) & UINT64_MAX),
                                 cache_prompt=bool_field(body, "cache_prompt", True), **extras)
               for k, prompt in enumerate(p for p in prompts for _ in range(n))]
    options = body.get("stream_options") or {}
    return Plan(choices, prompts, n, bool(body.get("stream")), bool(options.get("include_usage")), echo)


def capped_max_tokens(body: dict, max_tokens_out: int, default: int, lowest: int) -> int:
    """max_tokens as asked, at most --max-tokens-out (llama-server caps rather than refuses;
    the answer then ends with finish_reason "length")."""
    value = int_field(body, "max_tokens", None) if body.get("max_tokens") is not None else None
    if value is None:
        value = default
    if value < lowest:
        why = "; 0 only with echo (prompt scoring)" if lowest == 1 and value == 0 else ""
        raise invalid("max_tokens", f"must be at least {lowest}, got {value}{why}")
    return min(value, max_tokens_out, MAX_TOKENS_LIMIT)


def top_n_field(body: dict, field: str) -> int | None:
    value = int_field(body, field, None) if body.get(field) is not None else None
    if value is not None and not 0 <= value <= shapes.MAX_TOP_LOGPROBS:
        raise invalid(field, f"must be in 0..{shapes.MAX_TOP_LOGPROBS}, got {value}")
    return value


def chat_logprobs(body: dict) -> dict:
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise invalid("logprobs", f"must be a boolean, got {json_type(wanted)}")
    top = top_n_field(body, "top_logprobs")
    if top is not None and not wanted:
        raise invalid("top_logprobs", "needs logprobs: true")
    return {"logprobs": (top or 0) if wanted else None}


def response_format_grammar(fmt) -> str | None:
    """The grammar every answer must match: none for text, any JSON object for json_object,
    the schema's for json_schema (OpenAI's {"name", "schema", "strict"})."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
        raise invalid("response_format", "must be an object with a string type")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return json_schema_grammar({"type": "object"}, "response_format")
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise invalid("response_format.json_schema", "must be an object {name, schema, strict}")
        return json_schema_grammar(spec.get("schema", {}), "response_format.json_schema.schema")
    raise invalid("response_format", f"type {fmt['type']!r} is not one of text, json_object, json_schema")


def completion_prompts(body: dict) -> list[str]:
    prompt = body.get("prompt")
    if not isinstance(prompt, list):
        return [text_field(body, "prompt", MAX_PROMPT_CHARS)]
    if not prompt:
        raise invalid("prompt", "must not be an empty list")
    if not all(isinstance(p, str) for p in prompt):
        raise invalid("prompt", "token-id prompts are not supported; send text (a string or a list of strings)")
    return [text_field({"prompt": p}, "prompt", MAX_PROMPT_CHARS) for p in prompt]


def has_developer_role(tokenizer) -> bool:
    template = tokenizer.chat_template
    return template is not None and "developer" in template.source


def chat_prompt(tokenizer, messages: list[dict], **extra) -> str:
    return tokenizer.apply_chat_template(messages, **extra)


def chat_messages(body: dict, developer_role: bool) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "must be a non-empty list of {role, content}")
    return [chat_message(m, developer_role) for m in messages]


def chat_message(message, developer_role: bool) -> dict:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise invalid("messages", "every message must be an object with a string role")
    role = message["role"]
    if role == "developer" and not developer_role:  # OpenAI's newer name of system
        role = "system"
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) and p.get("type") == "text" else None for p in content]
        if None in parts:
            raise invalid("messages", "only text content parts are supported")
        content = "".join(parts)
    if content is None and role in ROLES_WITH_OPTIONAL_CONTENT:
        content = ""
    if not isinstance(content, str):
        raise invalid("messages", f"a {role} message's content must be a string or a list of text parts")
    out = {"role": role, "content": content}
    if role == "assistant" and message.get("tool_calls"):
        if not isinstance(message["tool_calls"], list):
            raise invalid("messages", "tool_calls must be a list")
        out["tool_calls"] = message["tool_calls"]
    if role == "tool":  # a function's result, answering a call by its id
        out.update({k: message[k] for k in ("tool_call_id", "name") if isinstance(message.get(k), str)})
    return out


async def respond(plan: Plan, state, accepted_at: float, trace, completion):
    runner = state.runner
    first = await runner.start(plan.choices[0], accepted_at, trace=trace, wait=True)
    if plan.stream:
        response = Response(stream_chunks(plan, first, state, completion),
                            content_type="text/event-stream; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})
        response.timeout = None
        return response
    results = []
    for index, request in enumerate(plan.choices):
        job = first if index == 0 else await runner.start(request, time.monotonic(), wait=True, first=True)
        try:
            results.append(await collect(job))
        finally:
            runner.abandon(job)
    return completion.whole(plan, results)


async def collect(job) -> shapes.Result:
    """A finished job's text, logprob entries and counts; its error raised."""
    result = shapes.Result()
    async for kind, data in job.events():
        if kind == "error":
            raise OrcdError(data["message"], code=data["code"])
        result.add(kind, data)
    return result


async def stream_chunks(plan: Plan, first, state, completion):
    """OpenAI's stream: `data: <chunk>` frames, choice after choice, an error as
    `data: {"error": ...}`, then [DONE]."""
    usage = shapes.Usage()
    job = first
    try:
        for index, request in enumerate(plan.choices):
            if index:
                job = await state.runner.start(request, time.monotonic(), wait=True, first=True)
            choice = completion.streamed_choice(index, plan)
            async for kind, data in job.events():
                if kind == "error":
                    yield data_frame(json.dumps(shapes.error_body(OrcdError(data["message"], code=data["code"]))))
                    yield data_frame("[DONE]")
                    return
                for chunk in choice.chunks(kind, data):
                    yield data_frame(json.dumps(chunk, ensure_ascii=False))
            usage.add(choice.result, index % plan.n == 0)
            state.runner.abandon(job)
        if plan.include_usage:
            yield data_frame(json.dumps(completion.usage_chunk(usage)))
    except OrcdError as e:  # a later choice could not start
        yield data_frame(json.dumps(shapes.error_body(e)))
    finally:
        state.runner.abandon(job)
    yield data_frame("[DONE]")
