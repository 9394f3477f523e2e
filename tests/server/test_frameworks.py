"""The clients people already use, as a new user would drive them against `orcd serve`:
LangChain's ChatOpenAI and litellm (each skipped, with the reason, where it is not installed)."""
import json
from typing import Literal

import pytest


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


def test_litellm_completion_and_batch(base_url):
    litellm = pytest.importorskip("litellm", reason="litellm is not installed (pip install litellm)")
    args = dict(model="openai/m", api_base=base_url, api_key="unused", max_tokens=6, temperature=0)
    one = litellm.completion(messages=[{"role": "user", "content": "Hi"}], **args)
    batch = litellm.batch_completion(messages=[[{"role": "user", "content": "Hi"}]] * 3, **args)
    assert [b.choices[0].message.content for b in batch] == [one.choices[0].message.content] * 3
    assert json.loads(one.model_dump_json())["usage"]["completion_tokens"] == 6
