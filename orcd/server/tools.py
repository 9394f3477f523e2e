"""Tool calls on chat: `tools` rendered by the GGUF's own chat template, the model's tool-call
markup parsed back into OpenAI `tool_calls`, and `tool_choice` required or named enforced by
the grammar engine so that the call always parses.

The markup is Hermes/Qwen2.5's, the one whose template carries a tools section:
    <tool_call>
    {"name": <function-name>, "arguments": <args-json-object>}
    </tool_call>
Qwen2.5-Coder often answers the same object alone, bare or in a ```json fence; as llama.cpp's
Hermes parser does, that answer is a call too when it names one of the tools.
"""
from __future__ import annotations

import dataclasses
import json
import re
import uuid

from orcd.engine.grammar import JSON_OPTIONS, lark_grammar
from orcd.errors import invalid

OPEN, CLOSE = "<tool_call>", "</tool_call>"
CALL = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*" + re.escape(CLOSE), re.S)
FENCED = re.compile(r"\s*(?:```(?:json)?\s*)?(\{.*\})\s*(?:```)?\s*", re.S)


@dataclasses.dataclass(frozen=True)
class Tools:
    """What a chat request asks of tools: the functions the template renders and the grammar
    a required or named call must follow (None: the model chooses)."""
    tools: list[dict]
    grammar: str | None

    @property
    def names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]


def tools_of(body: dict, tokenizer) -> Tools | None:
    """None when the request has no tools or tool_choice is "none" (the template then renders
    no tools section, and nothing is parsed)."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto" if tools else "none")
    if tools is None or choice == "none":
        check_choice(choice, [])
        return None
    if not isinstance(tools, list) or not tools:
        raise invalid("tools", "must be a non-empty list of {type: function, function: {name, parameters}}")
    functions = [function_of(t) for t in tools]
    check_choice(choice, [f["name"] for f in functions])
    template = tokenizer.chat_template
    if template is None or OPEN not in template.source:
        raise invalid("tools", "this model's chat template has no tool-call section (<tool_call>); "
                               "send the functions in a message instead")
    grammar = None
    if choice == "required" or isinstance(choice, dict):
        chosen = functions if choice == "required" else [f for f in functions if f["name"] == choice["function"]["name"]]
        grammar = call_grammar(chosen, tokenizer)
    return Tools([{"type": "function", "function": f} for f in functions], grammar)


def function_of(tool) -> dict:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise invalid("tools", "every tool must be {type: function, function: {name, parameters}}")
    f = tool["function"]
    if not isinstance(f.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", f["name"]):
        raise invalid("tools", "a function name must be 1 to 64 letters, digits, _ or -")
    if not isinstance(f.get("parameters", {}), dict):
        raise invalid("tools", f"the parameters of {f['name']} must be a JSON schema object")
    return {k: f[k] for k in ("name", "description", "parameters") if k in f}


def check_choice(choice, names: list[str]) -> None:
    if choice in ("none", "auto", "required"):
        return
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(name, str):
        raise invalid("tool_choice", 'must be "none", "auto", "required" or {type: function, function: {name}}')
    if name not in names:
        raise invalid("tool_choice", f"names {name!r}, which is not among the tools")


def call_grammar(functions: list[dict], tokenizer) -> str:
    """One call of one of `functions`: the markup around {"name", "arguments"} whose arguments
    follow the function's parameters schema. <tool_call> is a token of its own in Qwen's
    vocabulary: the grammar names that token, as the model writes it."""
    schema = {"anyOf": [{"type": "object", "properties": {"name": {"const": f["name"]},
                                                          "arguments": f.get("parameters") or {"type": "object"}},
                         "required": ["name", "arguments"], "additionalProperties": False}
                        for f in functions], "x-guidance": JSON_OPTIONS}
    lark = (f"start: {markup(OPEN, tokenizer)} \"\\n\" call \"\\n\" {markup(CLOSE, tokenizer)}\n"
            f"call: %json {json.dumps(schema)}\n")
    return lark_grammar(lark, "tools")


def markup(text: str, tokenizer) -> str:
    ids = tokenizer.encode(text, add_special=False, parse_special=True)
    if len(ids) == 1 and tokenizer.is_break(ids[0]):
        return f"<[{ids[0]}]>"
    return json.dumps(text)


def rendered_messages(messages: list[dict]) -> list[dict]:
    """Assistant tool calls as templates read them: arguments as objects, not JSON text
    (Qwen's template writes `arguments | tojson`)."""
    out = []
    for m in messages:
        calls = m.get("tool_calls")
        if calls:
            m = {**m, "tool_calls": [rendered_call(c) for c in calls]}
        out.append(m)
    return out


def rendered_call(call) -> dict:
    f = call.get("function") if isinstance(call, dict) else None
    if not isinstance(f, dict) or not isinstance(f.get("name"), str):
        raise invalid("messages", "a tool call must be {id, type: function, function: {name, arguments}}")
    arguments = f.get("arguments", "{}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            raise invalid("messages", f"the arguments of the call to {f['name']} are not JSON") from None
    return {**call, "function": {"name": f["name"], "arguments": arguments}}


def parse_calls(text: str, names) -> tuple[str | None, list[dict]]:
    """(content before the first call or None, OpenAI tool_calls) of an answer; no calls when
    a call does not parse into a name and arguments: the text then stays content."""
    calls = []
    for match in CALL.finditer(text):
        call = call_of(match.group(1), names)
        if call is None:
            return text, []
        calls.append(call)
    if calls:
        return text[:text.index(OPEN)].strip() or None, calls
    alone = FENCED.fullmatch(text)
    call = call_of(alone.group(1), names) if alone else None
    return (None, [call]) if call else (text, [])


def call_of(source: str, names) -> dict | None:
    try:
        call = json.loads(source)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or call.get("name") not in names or not isinstance(call.get("arguments", {}), dict):
        return None
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}), ensure_ascii=False)}}


class CallStream:
    """Streamed text split into content, sent as it comes, and tool-call markup, held until the
    end: text that could still begin <tool_call> waits for the next piece, and so does an
    answer that opens like a bare call ({ or ```)."""

    def __init__(self, names):
        self.names = names
        self.held = ""
        self.markup = ""
        self.sent = False

    def feed(self, text: str) -> str:
        if self.markup:
            self.markup += text
            return ""
        buf = self.held + text
        at = buf.find(OPEN)
        if at >= 0:
            self.held, self.markup = "", buf[at:]
            return self.send(buf[:at])
        opening = buf.lstrip()
        if not self.sent and (not opening or opening.startswith(("{", "```")) or "```".startswith(opening)):
            self.held = buf  # maybe a bare call: decided at the end
            return ""
        keep = next((n for n in range(min(len(buf), len(OPEN) - 1), 0, -1) if OPEN.startswith(buf[-n:])), 0)
        self.held = buf[len(buf) - keep:]
        return self.send(buf[:len(buf) - keep])

    def send(self, text: str) -> str:
        self.sent = self.sent or bool(text)
        return text

    def finish(self) -> tuple[str, list[dict]]:
        """(content still to send, the calls); markup that does not parse is sent as content."""
        text, self.held = self.markup or self.held, ""
        _, calls = parse_calls(text, self.names)
        return ("", calls) if calls else (text, [])
