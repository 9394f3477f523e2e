"""The OpenAI chat deltas a markup parser emits, and the message they fold into."""
from __future__ import annotations

import json
import uuid


class Plain:
    """The parser of an answer without markup: all content."""

    def feed(self, text: str) -> list[dict]:
        return [{"content": text}] if text else []

    def finish(self) -> list[dict]:
        return []


class StateParser:
    """A streaming parser as a state machine: feed() appends the text and runs the method
    `_<state>` until it returns False (it needs more text); each may append deltas to out."""

    def __init__(self, names: list[str], state: str):
        self.names = names  # the functions the request offers
        self.buf = ""
        self.state = state
        self.calls = 0

    def feed(self, text: str) -> list[dict]:
        self.buf += text
        out: list[dict] = []
        while getattr(self, "_" + self.state)(out):
            pass
        return out


def call_opened(index: int, name: str) -> dict:
    return {"tool_calls": [{"index": index, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                            "function": {"name": name, "arguments": ""}}]}


def call_arguments(index: int, text: str) -> dict:
    return {"tool_calls": [{"index": index, "function": {"arguments": text}}]}


def whole_call(index: int, name: str, arguments: dict) -> list[dict]:
    """A call recognised only once complete: its opening, then its arguments in one piece."""
    return [call_opened(index, name), call_arguments(index, json.dumps(arguments, ensure_ascii=False))]


def message_of(deltas) -> dict:
    """The assistant message the deltas add up to, as OpenAI's client folds a stream. With
    calls, content is what the model said beside them, or null."""
    content, reasoning, calls = [], [], {}
    for delta in deltas:
        content.append(delta.get("content", ""))
        reasoning.append(delta.get("reasoning_content", ""))
        for piece in delta.get("tool_calls", ()):
            call = calls.setdefault(piece["index"], {"id": piece.get("id"), "type": "function",
                                                     "function": {"name": piece["function"].get("name"),
                                                                  "arguments": ""}})
            call["function"]["arguments"] += piece["function"].get("arguments", "")
    message = {"role": "assistant", "content": "".join(content)}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["content"] = message["content"].strip() or None
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def held_back(text: str, markers) -> int:
    """How many characters at the end of `text` could begin one of `markers`: they wait for
    the next piece."""
    for n in range(min(len(text), max(map(len, markers)) - 1), 0, -1):
        if any(m.startswith(text[-n:]) for m in markers):
            return n
    return 0
