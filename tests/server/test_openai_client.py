"""The official `openai` client, unchanged, against a real `orcd serve` on the NumPy engine."""
import json

import pytest

openai = pytest.importorskip("openai", reason="the openai package is not installed (pip install openai)")


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def test_models(client):
    assert [m.id for m in client.models.list()] == ["qwen2.gguf"]


def test_completion_streamed_equals_whole(client):
    args = dict(model="qwen2.gguf", prompt="Hello", max_tokens=6, temperature=0)
    whole = client.completions.create(**args)
    streamed = "".join(c.choices[0].text for c in client.completions.create(**args, stream=True))
    assert whole.choices[0].text == streamed and whole.usage.completion_tokens == 6
    assert whole.choices[0].finish_reason == "length"


def test_chat_streamed_equals_whole(client):
    args = dict(model="qwen2.gguf", messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
                temperature=0, seed=3)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.choices[0].message.content == streamed
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "length"


def test_errors_raise_the_client_exception(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="m", prompt="Hello", max_tokens=4, temperature=2.5)
    assert e.value.code == "INVALID_REQUEST" and e.value.param == "temperature"


def test_model_retrieve(client):
    assert client.models.retrieve("qwen2.gguf").id == "qwen2.gguf"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_overlapping_requests_wait_instead_of_failing(client):
    """The openai client gives up on a 503 after its retries (none here): the queue serves both."""
    from concurrent.futures import ThreadPoolExecutor
    args = dict(model="m", prompt="Once upon a time", max_tokens=40, temperature=0)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.completions.create(**args), range(4)))
    assert len({a.choices[0].text for a in answers}) == 1 and all(a.usage.completion_tokens == 40 for a in answers)


def test_completion_logprobs_and_prompt_scoring(client):
    out = client.completions.create(model="m", prompt="Hello there", max_tokens=4, temperature=0, logprobs=2)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == 4 and all(len(t) <= 2 for t in lp.top_logprobs)
    scored = client.completions.create(model="m", prompt="Hello there", max_tokens=0, echo=True, logprobs=0)
    assert scored.choices[0].text == "Hello there" and scored.choices[0].logprobs.token_logprobs[0] is None
    batch = client.completions.create(model="m", prompt=["a", "b"], n=2, max_tokens=2, seed=1)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]


def test_chat_logprobs_and_json_schema(client):
    out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
                                         temperature=0, logprobs=True, top_logprobs=3)
    assert len(out.choices[0].logprobs.content) == 3 and len(out.choices[0].logprobs.content[0].top_logprobs) == 3
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    out = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "JSON please"}], max_tokens=20, seed=1,
        response_format={"type": "json_schema", "json_schema": {"name": "ok", "schema": schema, "strict": True}})
    assert json.loads(out.choices[0].message.content)["ok"] in (True, False)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "u", "schema": {"type": "array", "uniqueItems": True}}})
    assert "uniqueItems" in e.value.message


def test_context_overflow_is_the_clients_context_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "word " * 400}])
    assert e.value.code == "context_length_exceeded" and e.value.param == "messages"


@pytest.mark.real_qwen
def test_qwen_calls_the_weather_tool(qwen_url):
    """The judge of issue 18: the real Qwen2.5-Coder file, its own template, tool_choice auto."""
    client = openai.OpenAI(base_url=qwen_url, api_key="unused", max_retries=0, timeout=600)
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a given city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                       "required": ["city"]}}}]
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    out = client.chat.completions.create(model="q", messages=ask, tools=tools, temperature=0, max_tokens=60)
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    stream = client.chat.completions.create(model="q", messages=ask, tools=tools, temperature=0, max_tokens=60,
                                            stream=True)
    pieces = [d.tool_calls[0] for c in stream if c.choices for d in [c.choices[0].delta] if d.tool_calls]
    assert pieces[0].function.name == "get_weather" and len(pieces) > 2  # the name, then the arguments in pieces
    assert json.loads("".join(p.function.arguments for p in pieces)) == {"city": "Paris"}
    answer = client.chat.completions.create(model="q", temperature=0, max_tokens=40, tools=tools, messages=ask + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21, "sky": "sunny"}'}])
    assert "21" in answer.choices[0].message.content
