"""Hermes/Qwen2.5 tool calls, the markup of the templates that carry a <tool_call> section:
    <tool_call>
    {"name": <function-name>, "arguments": <args-json-object>}
    </tool_call>
Qwen2.5-Coder often answers the same object alone, bare or in a ```json fence; as llama.cpp's
Hermes parser does, that answer is a call too when it names one of the tools.

A call whose name comes first (as the template shows it) opens as soon as its arguments
begin, and they stream as the model writes them; any other order is parsed once the call is
complete. Markup that is no call (bad JSON, a name among no tools) is sent as content.
"""
from __future__ import annotations

import json
import re

from orcd.engine.grammar import JSON_OPTIONS, lark_grammar
from orcd.server.markup.deltas import Plain, StateParser, call_arguments, call_opened, held_back, whole_call
from orcd.server.markup.lark import token

OPEN, CLOSE = "<tool_call>", "</tool_call>"
NAME_FIRST = r'\s*\{\s*"name"\s*:\s*"([A-Za-z0-9_-]*)"\s*,\s*"arguments"\s*:\s*(?=\S)'
HEAD = re.compile(NAME_FIRST)
BARE_HEAD = re.compile(r"\s*(?:```(?:json)?\s*)?" + NAME_FIRST)
FENCED = re.compile(r"\s*(?:```(?:json)?\s*)?(\{.*\})\s*(?:```)?\s*", re.S)
BARE_END = re.compile(r"\s*\}\s*(?:```)?\s*")
# a name-first head is this long at most (a name is 1..64 characters, tools.py): past it, the
# call is read whole
HEAD_CHARS = 160


class Hermes:
    def renders_tools(self, template_source: str) -> bool:
        return OPEN in template_source

    def parser(self, tool_names: list[str]):
        return Parser(tool_names) if tool_names else Plain()

    def call_grammar(self, functions: list[dict], tokenizer) -> str:
        """The markup around {"name", "arguments"}, the arguments following the function's
        parameters schema."""
        schema = {"anyOf": [{"type": "object", "properties": {"name": {"const": f["name"]},
                                                              "arguments": f.get("parameters") or {"type": "object"}},
                             "required": ["name", "arguments"], "additionalProperties": False}
                            for f in functions], "x-guidance": JSON_OPTIONS}
        lark = (f"start: {token(OPEN, tokenizer)} \"\\n\" call \"\\n\" {token(CLOSE, tokenizer)}\n"
                f"call: %json {json.dumps(schema)}\n")
        return lark_grammar(lark, "tools")


MARKUP = Hermes()


class Parser(StateParser):
    """States: start (nothing but space yet), content, head (inside <tool_call>, or a bare
    answer that opens like a call), arguments (streaming), tail (after the arguments, up to
    </tool_call>), held (a call read whole at its end)."""

    def __init__(self, names: list[str]):
        super().__init__(names, "start")
        self.bare = False
        self.depth = JsonDepth()

    def finish(self) -> list[dict]:
        out = self.feed("")
        buf, self.buf = self.buf, ""
        if self.state in ("start", "content"):
            self.content(out, buf)
        elif self.state in ("head", "held"):
            if self.bare:
                whole = FENCED.fullmatch(buf)
                call = call_of(whole.group(1), self.names) if whole else None
                out += whole_call(self.calls, *call) if call else [{"content": buf}]
            else:
                out.append({"content": OPEN + buf})
        elif self.state == "tail" and self.bare:
            self.content(out, buf[BARE_END.match(buf).end():] if BARE_END.match(buf) else buf)
        return out

    def content(self, out: list[dict], text: str) -> None:
        if text and not (self.calls and text.isspace()):  # no content deltas of the space between calls
            out.append({"content": text})

    def _start(self, out) -> bool:
        opening = self.buf.lstrip()
        if opening.startswith(("{", "```")):
            self.state, self.bare = "head", True
            return True
        if not opening or "```".startswith(opening):
            return False  # maybe a bare call
        self.state = "content"
        return True

    def _content(self, out) -> bool:
        at = self.buf.find(OPEN)
        if at >= 0:
            self.content(out, self.buf[:at])
            self.buf, self.state, self.bare = self.buf[at + len(OPEN):], "head", False
            return True
        keep = held_back(self.buf, (OPEN,))
        text = self.buf[:len(self.buf) - keep]
        if not (self.calls and text.isspace()):
            self.content(out, text)
            self.buf = self.buf[len(text):]
        return False

    def _head(self, out) -> bool:
        head = (BARE_HEAD if self.bare else HEAD).match(self.buf)
        if head is not None:
            rest = self.buf[head.end():]
            if head.group(1) in self.names and rest.startswith("{"):
                out.append(call_opened(self.calls, head.group(1)))
                self.buf, self.state = rest, "arguments"
                self.depth = JsonDepth()
            else:
                self.state = "held"
            return True
        if (not self.bare and CLOSE in self.buf) or len(self.buf) > HEAD_CHARS:
            self.state = "held"
            return True
        return False

    def _arguments(self, out) -> bool:
        end = self.depth.feed(self.buf)
        piece = self.buf if end is None else self.buf[:end]
        if piece:
            out.append(call_arguments(self.calls, piece))
        self.buf = self.buf[len(piece):]
        if end is None:
            return False
        self.calls += 1
        self.state = "tail"
        return True

    def _tail(self, out) -> bool:
        at = -1 if self.bare else self.buf.find(CLOSE)
        if at < 0:
            return False  # a bare call's rest is read at the end
        self.buf, self.state = self.buf[at + len(CLOSE):], "content"
        return True

    def _held(self, out) -> bool:
        at = -1 if self.bare else self.buf.find(CLOSE)
        if at < 0:
            return False
        call = call_of(self.buf[:at], self.names)
        if call is None:
            out.append({"content": OPEN + self.buf[:at + len(CLOSE)]})
        else:
            out += whole_call(self.calls, *call)
            self.calls += 1
        self.buf, self.state = self.buf[at + len(CLOSE):], "content"
        return True


def call_of(source: str, names) -> tuple[str, dict] | None:
    """(name, arguments) of a complete call object naming one of the tools."""
    try:
        call = json.loads(source)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or call.get("name") not in names or not isinstance(call.get("arguments", {}), dict):
        return None
    return call["name"], call.get("arguments", {})


class JsonDepth:
    """Where the JSON object a text begins with ends, read piece by piece: brackets counted
    outside strings."""

    def __init__(self):
        self.depth, self.in_string, self.escaped = 0, False, False

    def feed(self, text: str) -> int | None:
        """The index just past the object's closing brace in `text`, or None: not yet."""
        for i, ch in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    return i + 1
        return None
