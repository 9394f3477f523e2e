"""GPT-OSS on /v1/chat/completions: the tiny synthetic gpt-oss file wears gpt-oss's real chat
template (tests/tokenizer/templates), which renders the tools as a `functions` namespace;
tool_choice required holds its random weights to harmony's call markup, so the call parsed
is one the model generated, streamed as OpenAI streams calls. The parser itself is judged on
real harmony text in tests/server/markup/test_harmony_markup.py."""
import asyncio
import json
from pathlib import Path

import pytest

from orcd.engine import create_engine
from orcd.server.fields import Limits
from orcd.server.openai import chat_plan
from orcd.server.openai_schema import CHAT
from orcd.testing.synth import write_model
from orcd.testing.vocab import HARMONY
from orcd.tokenizer.chat import ChatTemplate
from served import Served, chat_chunks

GPT_OSS_TEMPLATE = Path(__file__).parents[1] / "tokenizer/templates/openai-gpt-oss-120b.jinja"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"], "additionalProperties": False}}}
GPT_OSS_CTX = 2048  # the tiny vocabulary spells the system and tools preamble in ~1,000 tokens
# The grammar lets the model reason first, as gpt-oss does; with seed 18 these random weights
# leave the analysis channel at once (most seeds reason until max_tokens there).
ASK = {"model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER],
       "max_tokens": 60, "temperature": 1.0, "seed": 18, "tool_choice": "required"}


@pytest.fixture(scope="module")
def gpt_oss(tmp_path_factory):
    engine = create_engine("cpu")
    engine.load(write_model(tmp_path_factory.mktemp("harmony") / "gpt-oss.gguf", "gpt-oss", quant="Q8_0"),
                GPT_OSS_CTX)
    engine.tokenizer.chat_template = ChatTemplate(GPT_OSS_TEMPLATE.read_text(encoding="utf-8"))
    return engine


def run(engine, test):
    async def main():
        return await test(Served(engine, ctx=GPT_OSS_CTX))
    return asyncio.run(main())


def rendered_prompt(served, body) -> str:
    limits = Limits(vocab_size=served.state.vocab_size, max_tokens_out=served.state.runner.max_tokens_out)
    return chat_plan(body, CHAT.parse(body, limits), served.state, limits, "chatcmpl-test").prompts[0]


def test_the_template_renders_the_tools(gpt_oss):
    async def check(s):
        prompt = rendered_prompt(s, ASK)
        assert "namespace functions {\n\n// The weather in a city\ntype get_weather = (_: {\ncity: string,\n" in prompt
        assert "Calls to these tools must go to the commentary channel: 'functions'." in prompt
        assert prompt.endswith("<|start|>user<|message|>Weather in Paris?<|end|><|start|>assistant")
        assert "namespace functions" not in rendered_prompt(s, {**ASK, "tool_choice": "none"})
    run(gpt_oss, check)


def test_a_required_call_whole_and_streamed(gpt_oss):
    async def check(s):
        whole = await (await s.client.post("/v1/chat/completions", json=ASK)).get_json()
        choice = whole["choices"][0]
        assert choice["finish_reason"] == "tool_calls", whole
        call = choice["message"]["tool_calls"][0]["function"]
        assert call["name"] == "get_weather" and isinstance(json.loads(call["arguments"])["city"], str)
        assert "<|" not in (choice["message"]["content"] or "") + choice["message"].get("reasoning_content", "")
        chunks = await chat_chunks(s.client, {**ASK, "stream": True})
        pieces = [d["tool_calls"][0] for d in (c["choices"][0]["delta"] for c in chunks) if "tool_calls" in d]
        assert pieces[0]["function"] == {"name": "get_weather", "arguments": ""} and "id" in pieces[0]
        assert len(pieces) > 2 and "".join(p["function"]["arguments"] for p in pieces) == call["arguments"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    run(gpt_oss, check)


def test_the_call_and_its_result_go_back_to_the_model(gpt_oss):
    async def check(s):
        answer = (await (await s.client.post("/v1/chat/completions", json=ASK)).get_json())["choices"][0]["message"]
        call = answer["tool_calls"][0]
        turns = ASK["messages"] + [answer, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
        prompt = rendered_prompt(s, {**ASK, "messages": turns})
        assert (f"<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
                f"{call['function']['arguments']}<|call|>") in prompt
        assert '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"sunny"<|end|>' in prompt
        # the reasoning an answer gave comes back as gpt-oss's template keeps it before a call
        turns[1] = {**answer, "reasoning_content": "I should call get_weather."}
        assert ("<|start|>assistant<|channel|>analysis<|message|>I should call get_weather.<|end|>"
                "<|start|>assistant to=functions.get_weather") in rendered_prompt(s, {**ASK, "messages": turns})
        r = await s.client.post("/v1/chat/completions", json={**ASK, "messages": turns, "tool_choice": "auto",
                                                              "max_tokens": 3})
        assert r.status_code == 200, await r.get_json()
    run(gpt_oss, check)


def test_a_template_without_tools_refuses_them(gpt_oss):
    async def check(s):
        r = await s.client.post("/v1/chat/completions", json=ASK)
        assert r.status_code == 400 and (await r.get_json())["error"]["param"] == "tools"
    minimal = gpt_oss.tokenizer.chat_template
    gpt_oss.tokenizer.chat_template = ChatTemplate(HARMONY)  # the synthetic file's own: no tools section
    try:
        run(gpt_oss, check)
    finally:
        gpt_oss.tokenizer.chat_template = minimal
