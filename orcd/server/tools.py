"""Tool calls on chat, the request side: `tools` checked and rendered by the GGUF's own chat
template, `tool_choice` required or named enforced by the grammar engine so that the call
always parses, and earlier calls rendered back. The model's markup (Qwen's <tool_call>,
GPT-OSS's harmony) is parsed back into `tool_calls` by orcd/server/markup/."""
from __future__ import annotations

import dataclasses
import json
import re

from orcd.errors import invalid


@dataclasses.dataclass(frozen=True)
class Tools:
    """What a chat request asks of tools: the functions the template renders and the grammar
    a required or named call must follow (None: the model chooses)."""
    tools: list[dict]
    grammar: str | None

    @property
    def names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]


def tools_of(body: dict, tokenizer, markup) -> Tools | None:
    """None when the request has no tools or tool_choice is "none" (the template then renders
    no tools section, and no call is parsed). `markup` is the template's (markup_of)."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto" if tools else "none")
    if tools is None or choice == "none":
        check_choice(choice, [])
        return None
    if not isinstance(tools, list) or not tools:
        raise invalid("tools", "must be a non-empty list of {type: function, function: {name, parameters}}")
    functions = [function_of(t) for t in tools]
    check_choice(choice, [f["name"] for f in functions])
    if markup is None or not markup.renders_tools(tokenizer.chat_template.source):
        raise invalid("tools", "this model's chat template renders no tools (no <tool_call> or harmony "
                               "functions section); send the functions in a message instead")
    grammar = None
    if choice == "required" or isinstance(choice, dict):
        chosen = functions if choice == "required" else [f for f in functions if f["name"] == choice["function"]["name"]]
        grammar = markup.call_grammar(chosen, tokenizer)
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
