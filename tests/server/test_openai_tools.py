"""Tool calls on /v1/chat/completions: Qwen2.5's template renders the tools, the markup comes
back as tool_calls, tool_choice required or named is held by the grammar. The tiny model wears
Qwen2.5's real template (tests/tokenizer/templates), so its random weights call by the mask."""
import asyncio
import json
from pathlib import Path

import pytest

from orcd.engine import create_engine
from orcd.tokenizer.chat import ChatTemplate
from served import Served, chat_chunks

QWEN_TEMPLATE = Path(__file__).parents[1] / "tokenizer/templates/Qwen-Qwen2.5-7B-Instruct.jinja"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"],
    "additionalProperties": False}}}
TOOLS_CTX = 1024  # the tiny vocabulary spells Qwen's tools preamble in ~700 tokens
ASK = {"model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER, TIME],
       "max_tokens": 80, "temperature": 1.0, "seed": 4}


@pytest.fixture(scope="module")
def qwen_templated(tiny_model):
    engine = create_engine("cpu")
    engine.load(tiny_model, TOOLS_CTX)
    tok = engine.tokenizer
    tok.chat_template = ChatTemplate(QWEN_TEMPLATE.read_text(), "", tok.piece_bytes(tok.eos_id).decode())
    return engine


def run(engine, test):
    async def main():
        return await test(Served(engine, ctx=TOOLS_CTX))
    return asyncio.run(main())


def test_required_call_parses_whole_and_streamed(qwen_templated):
    async def check(s):
        body = {**ASK, "tool_choice": "required"}
        whole = await (await s.client.post("/v1/chat/completions", json=body)).get_json()
        choice = whole["choices"][0]
        assert choice["finish_reason"] == "tool_calls", whole
        call = choice["message"]["tool_calls"][0]["function"]
        assert call["name"] in ("get_weather", "get_time") and isinstance(json.loads(call["arguments"]), dict)
        chunks = await chat_chunks(s.client, {**body, "stream": True})
        pieces = [d["tool_calls"][0] for d in (c["choices"][0]["delta"] for c in chunks) if "tool_calls" in d]
        assert pieces[0]["function"] == {"name": call["name"], "arguments": ""}
        assert len(pieces) > 2 and "".join(p["function"]["arguments"] for p in pieces) == call["arguments"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    run(qwen_templated, check)


def test_named_call_and_the_answer_back(qwen_templated):
    async def check(s):
        named = {**ASK, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
        body = await (await s.client.post("/v1/chat/completions", json=named)).get_json()
        assert "tool_calls" in body["choices"][0]["message"], body
        call = body["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_time"
        assert json.loads(call["function"]["arguments"])["zone"] in ("UTC", "CET")
        turns = ASK["messages"] + [body["choices"][0]["message"],
                                   {"role": "tool", "tool_call_id": call["id"], "content": "12:00"}]
        r = await s.client.post("/v1/chat/completions", json={**ASK, "messages": turns, "max_tokens": 3})
        assert r.status_code == 200, await r.get_json()
        # the template showed the model its call and the result
        with_result = (await r.get_json())["usage"]["prompt_tokens"]
        r = await s.client.post("/v1/chat/completions", json={**ASK, "messages": turns[:1], "max_tokens": 3})
        assert with_result > (await r.get_json())["usage"]["prompt_tokens"] + 10
    run(qwen_templated, check)


def test_bad_tool_requests(qwen_templated):
    async def check(s):
        cases = [({"tools": [{"type": "function"}]}, "tools"),
                 ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
                 ({"tool_choice": "sometimes"}, "tool_choice"),
                 ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "tool_choice"),
                 ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]}]}, "messages")]
        for extra, param in cases:
            r = await s.client.post("/v1/chat/completions", json={**ASK, **extra})
            assert r.status_code == 400 and (await r.get_json())["error"]["param"] == param, (extra, await r.get_json())
    run(qwen_templated, check)


def test_tools_need_a_template_that_calls(serve):
    async def check(s):
        r = await s.client.post("/v1/chat/completions", json={**ASK, "tool_choice": "auto"})
        assert r.status_code == 400 and "<tool_call>" in (await r.get_json())["error"]["message"]
        r = await s.client.post("/v1/chat/completions", json={**ASK, "tool_choice": "none", "max_tokens": 2})
        assert r.status_code == 200
    serve(check)
