"""Qwen2.5's <tool_call> markup (orcd/server/markup/hermes.py): calls parsed out of answers,
whole or piece by piece, a call's name first and its arguments as they come."""
import json

from orcd.server.markup import hermes, message_of, parse

CALLS = ('Sure.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
         '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>')


def fed(text: str, names, piece: int = 1) -> list[dict]:
    parser = hermes.Parser(names)
    deltas = [d for at in range(0, len(text), piece) for d in parser.feed(text[at:at + piece])]
    return deltas + parser.finish()


def without_ids(message: dict) -> dict:
    return {**message, "tool_calls": [{**c, "id": None} for c in message["tool_calls"]]}


def test_calls_and_the_content_beside_them():
    message = parse(hermes.Parser(["f", "g"]), CALLS)
    assert message["content"] == "Sure." and [c["function"]["name"] for c in message["tool_calls"]] == ["f", "g"]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert message["tool_calls"][0]["id"].startswith("call_")
    assert message["tool_calls"][1]["function"]["arguments"] == "{}"


def test_markup_that_is_no_call_stays_content():
    broken = "<tool_call>{not json</tool_call>"
    assert parse(hermes.Parser(["f"]), broken)["content"] == broken
    assert parse(hermes.Parser(["f"]), "plain") == {"role": "assistant", "content": "plain"}
    fenced = '```json\n{"name": "f", "arguments": {"a": 2}}\n```'
    assert parse(hermes.Parser(["f"]), fenced)["tool_calls"][0]["function"]["arguments"] == '{"a": 2}'
    assert parse(hermes.Parser(["g"]), fenced) == {"role": "assistant", "content": fenced}  # names no tool
    assert parse(hermes.Parser(["f"]), '{"name": "f", "arguments": {}}')["content"] is None
    assert parse(hermes.Parser(["f"]), "{braces} are fine")["content"] == "{braces} are fine"


def test_arguments_in_another_order_are_read_whole():
    message = parse(hermes.Parser(["f"]), '<tool_call>{"arguments": {"x": "}"}, "name": "f"}</tool_call>')
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"x": "}"}


def test_the_name_comes_first_then_the_arguments_piece_by_piece():
    deltas = fed(CALLS, ["f", "g"], piece=3)
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"] == {"name": "f", "arguments": ""} and calls[0]["type"] == "function"
    pieces = [c["function"]["arguments"] for c in calls if c["index"] == 0 and "id" not in c]
    assert len(pieces) > 2 and "".join(pieces) == '{"a": 1}'
    whole = parse(hermes.Parser(["f", "g"]), CALLS)
    assert without_ids(message_of(deltas)) == without_ids(whole)
    assert [d["content"] for d in deltas if "content" in d] == ["Sur", "e.\n"]  # none of the space between calls


def test_text_that_may_begin_markup_waits():
    parser = hermes.Parser(["f"])
    assert parser.feed("Let me <") == [{"content": "Let me "}] and parser.feed("b>") == [{"content": "<b>"}]
    assert parser.feed(" now <tool") == [{"content": " now "}]
    assert parser.feed('_call>\n{"name": "f", ') == []
    opened = parser.feed('"arguments": {')
    assert opened[0]["tool_calls"][0]["function"]["name"] == "f"
    assert opened[1]["tool_calls"][0]["function"] == {"arguments": "{"}
    assert parser.feed("}}\n</tool_call>") == [{"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}]
    assert parser.finish() == []
    bare = hermes.Parser(["f"])
    assert bare.feed("```") == [] and bare.feed("json\n") == []
    assert bare.feed('{"name": "f", "arguments": {}}\n```')[0]["tool_calls"][0]["function"]["name"] == "f"
    assert bare.finish() == []
    prose = hermes.Parser(["f"])
    assert prose.feed("{braces} are fine") == [] and prose.finish() == [{"content": "{braces} are fine"}]


def test_strings_hold_braces():
    depth = hermes.JsonDepth()
    assert depth.feed('{"a": "}\\"{", "b": [') is None and depth.feed("{}]} tail") == 4
