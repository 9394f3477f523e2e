"""The request bodies of /v1/completions and /v1/chat/completions, from the field kinds of
orcd/server/fields.py: they check every field's type and range before openai.py plans the
jobs, and they are what /openapi.json documents. Contents with rules of their own (tools,
tool_choice, a response_format's schema, a message's tool_calls) are checked where they are
used (orcd/server/tools.py, orcd/engine/grammar.py), which names what is wrong."""
from __future__ import annotations

import dataclasses

from orcd.engine.logprobs import MAX_TOP_LOGPROBS
from orcd.errors import invalid
from orcd.server.fields import (UINT64_MAX, Body, Boolean, Field, Integer, JsonArray, JsonObject, Neutral,
                                Object, Text, TextList, check_text, json_type, text_schema)
from orcd.server.schema import CACHE_PROMPT, MAX_BODY_BYTES, MAX_PROMPT_CHARS, SAMPLING

OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS = 16
MAX_CHOICES = 64  # prompts x n of one request, served one after another
ROLES = ("system", "developer", "user", "assistant", "tool")
MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content"})


@dataclasses.dataclass(frozen=True)
class CompletionPrompt(Field):
    """A string, or a list of strings: one choice (or n) per prompt, one after another."""

    def check(self, value, limits):
        if not isinstance(value, list):
            return [check_text(self.name, value, MAX_PROMPT_CHARS)]
        if not value or len(value) > MAX_CHOICES:
            raise invalid(self.name, f"a list must hold 1 to {MAX_CHOICES} strings")
        if not all(isinstance(p, str) for p in value):
            raise invalid(self.name, "token-id prompts are not supported; send text (a string or a list of strings)")
        return [check_text(self.name, p, MAX_PROMPT_CHARS) for p in value]

    def schema(self, limits):
        one = text_schema(MAX_PROMPT_CHARS)
        return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_CHOICES}]}


@dataclasses.dataclass(frozen=True)
class Messages(Field):
    """A non-empty list of {role, content, name?}; content a string or a list of text parts,
    null only for an assistant turn that made tool calls; tool_calls on assistant turns,
    tool_call_id on tool turns."""

    def check(self, value, limits):
        if not isinstance(value, list) or not value:
            raise invalid(self.name, "must be a non-empty list of {role, content}")
        for message in value:
            self._message(message)
        return value

    def _message(self, message) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(self.name, "every message must be an object with a string role")
        role = message["role"]
        if role not in ROLES:
            raise invalid(self.name, f"role {role[:40]!r} is not one of {', '.join(ROLES)}")
        unknown = sorted(set(message) - MESSAGE_FIELDS)
        if unknown:
            raise invalid(self.name, f"unknown message field {unknown[0][:40]!r}")
        for key in ("name", "tool_call_id", "reasoning_content"):
            if not isinstance(message.get(key, ""), str):
                raise invalid(self.name, f"a message's {key} must be a string")
        if "tool_calls" in message and (role != "assistant" or not isinstance(message["tool_calls"], list)):
            raise invalid(self.name, "tool_calls must be a list, on an assistant message")
        content = message.get("content")
        if content is None and role == "assistant":
            return
        if isinstance(content, list):
            if not all(isinstance(p, dict) and set(p) == {"type", "text"} and p["type"] == "text"
                       and isinstance(p["text"], str) for p in content):
                raise invalid(self.name, "only text content parts are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise invalid(self.name, f"a {role} message's content must be a string or a list of "
                                     f"text parts, got {json_type(content)}")
        check_text(self.name, content, MAX_BODY_BYTES, 0)

    def schema(self, limits):
        part = {"type": "object", "required": ["type", "text"], "additionalProperties": False,
                "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
        content = [{"type": "string"}, {"type": "array", "items": part}]
        common = {"name": {"type": "string", "description": "given to the chat template"}}
        assistant = {"type": "object", "required": ["role"], "additionalProperties": False,
                     "properties": {"role": {"const": "assistant"}, **common,
                                    "content": {"anyOf": [*content, {"type": "null"}]},
                                    "tool_calls": {"type": "array", "description": "calls it made"},
                                    "reasoning_content": {"type": "string",
                                                          "description": "its reasoning, as an answer gave it"}}}
        other = {"type": "object", "required": ["role", "content"], "additionalProperties": False,
                 "properties": {"role": {"enum": [r for r in ROLES if r != "assistant"]}, **common,
                                "content": {"anyOf": content},
                                "tool_call_id": {"type": "string", "description": "on a tool's result"}}}
        return {"type": "array", "items": {"oneOf": [assistant, other]}, "minItems": 1}


@dataclasses.dataclass(frozen=True)
class ToolChoice(Field):
    """"none", "auto", "required", or {"type": "function", "function": {"name"}} (tools.py)."""

    def check(self, value, limits):
        if not isinstance(value, (str, dict)):
            raise invalid(self.name, f"must be a string or an object, got {json_type(value)}")
        return value

    def schema(self, limits):
        return {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]}


def max_tokens(name: str, fallback, low: int) -> Integer:
    return Integer(name, "most tokens to generate; above --max-tokens-out it is capped (finish_reason "
                   "length), as llama-server does", low=low, high=UINT64_MAX, fallback=fallback, nullable=True)


def neutral(*pairs) -> tuple[Neutral, ...]:
    return tuple(Neutral(name, "not supported beyond this value", value=value, nullable=True)
                 for name, value in pairs)


COMMON = (
    Text("model", "ignored: the worker serves one model", max_chars=256, min_chars=0, nullable=True),
    *(dataclasses.replace(f, nullable=True) for f in SAMPLING),
    TextList("stop", "up to 4 strings that end the generation", one_or_list=True, nullable=True),
    Integer("n", "choices per prompt, generated one after another with seeds seed, seed + 1, ...",
            low=1, high=MAX_CHOICES, nullable=True),
    Boolean("stream", "stream chunks as server-sent events, then `data: [DONE]`", nullable=True),
    Object("stream_options", "options of a streamed answer", nullable=True, body=Body("StreamOptions", (
        Boolean("include_usage", "a last chunk with the usage", nullable=True),))),
    Text("user", "ignored", max_chars=256, min_chars=0, nullable=True),
    dataclasses.replace(CACHE_PROMPT, nullable=True),
    *neutral(("best_of", 1), ("presence_penalty", 0.0), ("frequency_penalty", 0.0), ("suffix", None),
             ("logit_bias", {}), ("store", False)),
)
COMPLETIONS = Body("CompletionRequest", (
    CompletionPrompt("prompt", "the text to continue, or a list of texts", required=True),
    # 0 only with echo: the prompt is scored and nothing generated
    max_tokens("max_tokens", OPENAI_COMPLETIONS_DEFAULT_MAX_TOKENS, low=0),
    Integer("logprobs", "alternatives listed with each token's logprob", low=0, high=MAX_TOP_LOGPROBS,
            nullable=True),
    Boolean("echo", "the prompt comes back before the completion (with logprobs: scored)", nullable=True),
    *COMMON,
), unknown="unknown or unsupported field")
CHAT = Body("ChatCompletionRequest", (
    Messages("messages", "the conversation, rendered with the GGUF's chat template", required=True),
    max_tokens("max_tokens", None, low=1),
    max_tokens("max_completion_tokens", None, low=1),
    Boolean("logprobs", "each token's logprob in the answer", nullable=True),
    Integer("top_logprobs", "alternatives listed with each logprob (needs logprobs: true)", low=0,
            high=MAX_TOP_LOGPROBS, nullable=True),
    JsonObject("response_format", "{type: text | json_object | json_schema, json_schema?}", nullable=True),
    JsonArray("tools", "functions the model may call, rendered by the chat template", nullable=True),
    ToolChoice("tool_choice", "none, auto, required, or a named function", nullable=True),
    Boolean("parallel_tool_calls", "accepted; calls are made one after another", nullable=True),
    *COMMON,
), unknown="unknown or unsupported field")
