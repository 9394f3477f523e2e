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
from orcd.server.fields import UINT64_MAX, Limits
from orcd.server.handlers import json_body, traced_request
from orcd.server.markup import markup_of
from orcd.server.openai_schema import CHAT, COMPLETIONS, MAX_CHOICES, OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS
from orcd.server.schema import MAX_TOKENS_LIMIT, GenerationRequest, sampling_params
from orcd.server.sse import data_frame, encode_json

ROLES_WITH_OPTIONAL_CONTENT = {"assistant"}  # a tool-call turn carries content: null
SPLICE = "\x00"  # a token's text in the chunk ChoiceFrames splices texts into; JSON writes "\u0000"


@dataclasses.dataclass
class Plan:
    """One OpenAI request as jobs: one GenerationRequest per choice, in choice order."""
    choices: list[GenerationRequest]
    prompts: list[str]  # choice i answers prompts[i // n]
    n: int
    stream: bool
    include_usage: bool
    echo: bool = False
    markup: object = None  # the chat template's (orcd/server/markup), parsed out of the answers
    tool_names: list[str] | None = None  # calls of these are tool_calls


def register(app, state, limits: Limits) -> None:
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
        v = COMPLETIONS.parse(await json_body(), limits)
        completion = shapes.TextCompletion(new_id("cmpl"), state.model, state.engine.tokenizer)
        plan = completion_plan(v, state, limits, completion.id)
        traced_request("parsed")
        return await respond(plan, state, accepted_at, trace, completion)

    @app.post("/v1/chat/completions")
    async def chat_completions():
        accepted_at = time.monotonic()
        trace = traced_request("handler")
        body = await json_body()
        v = CHAT.parse(body, limits)
        completion = shapes.ChatCompletion(new_id("chatcmpl"), state.model, state.engine.tokenizer)
        plan = chat_plan(body, v, state, limits, completion.id)
        traced_request("parsed")
        try:
            return await respond(plan, state, accepted_at, trace, completion)
        except ContextOverflow as e:  # the prompt is the rendered messages
            raise ContextOverflow("messages", e.tokens, e.ctx) from None


def model_card(state) -> dict:
    return {"id": state.model, "object": "model", "created": int(state.metrics.started_wall),
            "owned_by": "orcd"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def completion_plan(v: dict, state, limits: Limits, job_id: str) -> Plan:
    echo = bool(v["echo"])
    extras = {"logprobs": v["logprobs"], "prompt_logprobs": echo and v["logprobs"] is not None}
    lowest = 0 if echo else 1  # max_tokens 0 with echo scores the prompt, generating nothing
    return plan_of(v, state, limits, job_id, v["prompt"], OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS, lowest,
                   extras, echo=echo)


def chat_plan(body: dict, v: dict, state, limits: Limits, job_id: str) -> Plan:
    """`v` holds the checked fields; tools and messages are read from the body, where
    tools.py and chat_messages check what their contents mean."""
    if v["max_completion_tokens"] is not None:  # the newer name of max_tokens
        v["max_tokens"] = v["max_completion_tokens"]
    grammar = response_format_grammar(v["response_format"])
    tokenizer = state.engine.tokenizer
    markup = markup_of(tokenizer.chat_template.source if tokenizer.chat_template else None)
    calls = tools.tools_of(body, tokenizer, markup)
    if calls is not None and calls.grammar is not None:
        if grammar is not None:
            raise invalid("tool_choice", "a required tool call and a response_format cannot both hold")
        grammar = calls.grammar
    messages = tools.rendered_messages(chat_messages(body, developer_role=has_developer_role(tokenizer)))
    prompt = chat_prompt(tokenizer, messages, **({"tools": calls.tools} if calls else {}))
    plan = plan_of(v, state, limits, job_id, [prompt], state.runner.max_tokens_out, 1,
                   {**chat_logprobs(v), "grammar": grammar})
    plan.markup, plan.tool_names = markup, calls.names if calls else None
    return plan


def plan_of(v: dict, state, limits: Limits, job_id: str, prompts: list[str], default_max_tokens: int,
            lowest: int, extras: dict, echo: bool = False) -> Plan:
    """Every choice's job carries the response's id: they run one at a time, and /cancel with
    the id a client saw stops the one running (and so the response)."""
    n = v["n"] or 1
    if n * len(prompts) > MAX_CHOICES:
        raise invalid("n", f"{len(prompts)} prompts x n {n} is more than {MAX_CHOICES} choices")
    params = sampling_params(v, limits)
    max_tokens = capped_max_tokens(v["max_tokens"], state.runner.max_tokens_out, default_max_tokens, lowest)
    choices = [GenerationRequest(job_id=job_id, prompt=prompt, max_tokens=max_tokens, stop=v["stop"],
                                 params=dataclasses.replace(params, seed=(params.seed + k) & UINT64_MAX)
                                 if k else params, cache_prompt=v["cache_prompt"], **extras)
               for k, prompt in enumerate(p for p in prompts for _ in range(n))]
    return Plan(choices, prompts, n, bool(v["stream"]), bool(v["stream_options"]["include_usage"]), echo)


def capped_max_tokens(value: int | None, max_tokens_out: int, default: int, lowest: int) -> int:
    """max_tokens as asked, at most --max-tokens-out (llama-server caps rather than refuses;
    the answer then ends with finish_reason "length")."""
    if value is None:
        value = default
    if value < lowest:
        why = "; 0 only with echo (prompt scoring)" if lowest == 1 and value == 0 else ""
        raise invalid("max_tokens", f"must be at least {lowest}, got {value}{why}")
    return min(value, max_tokens_out, MAX_TOKENS_LIMIT)


def chat_logprobs(v: dict) -> dict:
    wanted, top = v["logprobs"], v["top_logprobs"]
    if top is not None and not wanted:
        raise invalid("top_logprobs", "needs logprobs: true")
    return {"logprobs": (top or 0) if wanted else None}


def response_format_grammar(fmt) -> str | None:
    """The grammar every answer must match: none for text, any JSON object for json_object,
    the schema's for json_schema (OpenAI's {"name", "schema", "strict"})."""
    if fmt is None:
        return None
    if not isinstance(fmt.get("type"), str):
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
    if role == "assistant" and message.get("reasoning_content"):  # our answers' reasoning, sent back
        out["thinking"] = message["reasoning_content"]  # as gpt-oss's template reads it
    if role == "tool":  # a function's result, answering a call by its id
        out.update({k: message[k] for k in ("tool_call_id", "name") if isinstance(message.get(k), str)})
    return out


async def respond(plan: Plan, state, accepted_at: float, trace, completion):
    runner = state.runner
    if plan.stream:
        choice = completion.streamed_choice(0, plan)
        first = await runner.start(plan.choices[0], accepted_at, ChoiceFrames(choice), trace, wait=True)
        response = Response(stream_chunks(plan, first, choice, state, completion),
                            content_type="text/event-stream; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})
        response.timeout = None
        return response
    first = await runner.start(plan.choices[0], accepted_at, trace=trace, wait=True)
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


class ChoiceFrames:
    """The job stream's encoder for one streamed choice: encode(kind, data) -> the event's
    `data: <chunk>` frames, made on the engine thread as each event comes (orcd/server/
    stream.py). An error's frame reads no state of the choice: /cancel or the timeout may put
    it while a token is being encoded.

    A plain token's chunk (its text and nothing else) is the same JSON for every token but for
    the text, so that frame is made once, at the first event (on the engine thread, once the
    engine runs the job, off the request's path), and each text spliced in: a quarter of the
    work, done per token while the engine thread holds the GIL the event loop waits for."""

    def __init__(self, choice):
        self.choice = choice
        self.splice: tuple[bytes, bytes] | None = None  # the plain token frame around its text

    def __call__(self, kind: str, data: dict) -> bytes:
        if kind == "error":
            return data_frame(json.dumps(shapes.error_body(OrcdError(data["message"], code=data["code"]))))
        if self.splice is None:
            self.splice = spliced(data_frame(encode_json(self.choice.text_chunk(SPLICE))))
        head, tail = self.splice
        text = self.choice.plain_text(kind, data) if head else None
        if text is not None:
            return head + encode_json(text).encode("utf-8") + tail
        return b"".join(data_frame(encode_json(chunk)) for chunk in self.choice.chunks(kind, data))


def spliced(frame: bytes) -> tuple[bytes, bytes]:
    """`frame` before and after the text it holds as SPLICE; empty when SPLICE's JSON is not
    there exactly once (a model name holding it): no splicing then."""
    mark = encode_json(SPLICE).encode("utf-8")
    head, found, tail = frame.partition(mark)
    if not found or mark in tail:
        return b"", b""
    return head, tail


async def stream_chunks(plan: Plan, first, choice, state, completion):
    """OpenAI's stream: `data: <chunk>` frames, choice after choice, an error as
    `data: {"error": ...}`, then [DONE]. The frames that arrived together leave in one write."""
    usage = shapes.Usage()
    job = first
    try:
        for index, request in enumerate(plan.choices):
            if index:
                choice = completion.streamed_choice(index, plan)
                job = await state.runner.start(request, time.monotonic(), ChoiceFrames(choice), wait=True,
                                               first=True)
            async for chunk in job.chunks():
                if chunk:  # a text completion's `started` has no frame
                    yield chunk
            if job.outcome != "ok":  # the stream ended with the error's frame
                yield data_frame("[DONE]")
                return
            usage.add(choice.result, index % plan.n == 0)
            state.runner.abandon(job)
        if plan.include_usage:
            yield data_frame(json.dumps(completion.usage_chunk(usage)))
    except OrcdError as e:  # a later choice could not start
        yield data_frame(json.dumps(shapes.error_body(e)))
    finally:
        state.runner.abandon(job)
    yield data_frame("[DONE]")
