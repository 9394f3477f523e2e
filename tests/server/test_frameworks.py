"""The clients people already use, as a new user would drive them against `orcd serve`:
LangChain's ChatOpenAI, litellm, llama-index's OpenAILike and instructor (each skipped, with
the reason, where it is not installed; only langchain-openai is in the test extras: litellm
installs ~270 MB, llama-index ~125 MB and pins openai < 3, instructor's resolution takes
openai back to 3.3)."""
import json
from typing import Literal

import pytest

pytestmark = pytest.mark.clients


def chat_openai(url, **kw):
    langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
    return langchain_openai.ChatOpenAI(base_url=url, api_key="unused", model="m", max_retries=0, **kw)


def test_langchain_invoke_stream_batch(base_url):
    llm = chat_openai(base_url, max_tokens=8, temperature=0)
    whole = llm.invoke("Hello")
    assert whole.content and whole.usage_metadata["output_tokens"] == 8
    assert "".join(chunk.content for chunk in llm.stream("Hello")) == whole.content
    # four requests at once: the worker queues them instead of answering 503
    answers = llm.batch(["Hello"] * 4, config={"max_concurrency": 4})
    assert [a.content for a in answers] == [whole.content] * 4


def test_langchain_structured_output(base_url):
    from pydantic import BaseModel

    class Verdict(BaseModel):
        ok: bool
        level: Literal["low", "high"]
    llm = chat_openai(base_url, max_tokens=30, temperature=1.0, seed=3)
    verdict = llm.with_structured_output(Verdict, method="json_schema").invoke("Judge this.")
    assert isinstance(verdict, Verdict)


@pytest.mark.real_qwen
def test_langchain_bind_tools_on_qwen(qwen_url):
    def get_weather(city: str) -> str:
        """Get the current weather in a given city."""
        return "sunny"
    llm = chat_openai(qwen_url, max_tokens=60, temperature=0, timeout=600).bind_tools([get_weather])
    message = llm.invoke("What's the weather in Paris?")
    assert message.tool_calls[0]["name"] == "get_weather" and message.tool_calls[0]["args"] == {"city": "Paris"}


COLOUR = {"type": "object", "properties": {"colour": {"type": "string", "maxLength": 20}}, "required": ["colour"],
          "additionalProperties": False}


# Each library is a fixture listed before the worker's, so that a missing one skips the test
# before a worker starts for it.
@pytest.fixture
def litellm(monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else its import fetches a price list
    return pytest.importorskip("litellm", reason="litellm is not installed (pip install litellm)")


@pytest.fixture
def openai_like():
    return pytest.importorskip("llama_index.llms.openai_like", reason="llama-index's OpenAILike is not installed "
                               "(pip install llama-index-llms-openai-like)")


@pytest.fixture
def instructor():
    return pytest.importorskip("instructor", reason="instructor is not installed (pip install instructor)")


def test_litellm_completion_and_batch(litellm, base_url):
    args = dict(model="openai/m", api_base=base_url, api_key="unused", max_tokens=6, temperature=0)
    one = litellm.completion(messages=[{"role": "user", "content": "Hi"}], **args)
    batch = litellm.batch_completion(messages=[[{"role": "user", "content": "Hi"}]] * 3, **args)
    assert [b.choices[0].message.content for b in batch] == [one.choices[0].message.content] * 3
    assert json.loads(one.model_dump_json())["usage"]["completion_tokens"] == 6


def test_litellm_stream_text_completion_and_json_schema(litellm, smollm2_url):
    args = dict(model="openai/m", api_base=smollm2_url, api_key="unused", temperature=0, max_retries=0)
    ask = [{"role": "user", "content": "Name a colour."}]
    whole = litellm.completion(messages=ask, max_tokens=8, **args)
    streamed = litellm.completion(messages=ask, max_tokens=8, stream=True, **args)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == whole.choices[0].message.content
    text = litellm.text_completion(prompt="The capital of France is", max_tokens=4, **args)
    assert text.choices[0].text and text.usage.completion_tokens <= 4
    fmt = {"type": "json_schema", "json_schema": {"name": "colour", "schema": COLOUR}}
    answer = litellm.completion(messages=ask, max_tokens=30, response_format=fmt, **args)
    assert set(json.loads(answer.choices[0].message.content)) == {"colour"}


def test_llama_index_openai_like(openai_like, smollm2_url):
    from llama_index.core.llms import ChatMessage
    common = dict(model="m", api_base=smollm2_url, api_key="unused", max_retries=0, temperature=0,
                  max_tokens=8, context_window=1024)
    chat = openai_like.OpenAILike(is_chat_model=True, **common)
    ask = [ChatMessage(role="user", content="Name a colour.")]
    whole = chat.chat(ask).message.content
    assert whole and "".join(r.delta for r in chat.stream_chat(ask)) == whole
    text = openai_like.OpenAILike(is_chat_model=False, **common)  # /v1/completions
    completed = text.complete("The capital of France is").text
    assert completed and "".join(r.delta for r in text.stream_complete("The capital of France is")) == completed


def test_instructor_json_schema(instructor, smollm2_url):
    import openai
    from pydantic import BaseModel, Field

    class City(BaseModel):
        name: str = Field(max_length=30)
        country: str = Field(max_length=30)
        population_millions: float
    client = instructor.from_openai(openai.OpenAI(base_url=smollm2_url, api_key="unused", max_retries=0),
                                    mode=instructor.Mode.JSON_SCHEMA)
    ask = dict(model="m", messages=[{"role": "user", "content": "Describe Paris as JSON."}], max_tokens=60,
               temperature=1.0, seed=1)
    city = client.chat.completions.create(response_model=City, max_retries=1, **ask)
    assert isinstance(city, City)
    partials = list(client.chat.completions.create_partial(response_model=City, max_retries=1, **ask))
    assert len(partials) > 1 and partials[-1].model_dump() == city.model_dump()
