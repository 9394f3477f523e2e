"""cache_prompt over HTTP: `started` and OpenAI usage report the rows a job reused, /metrics
counts them, and the text is the text of a whole prefill; in-process on the tiny model, then
on a real `orcd serve --device cpu` with SmolLM2, with and without --no-prompt-cache."""
import json

import httpx
import pytest

from orcd.bench.http_client import started_worker
from served import sse

FIRST = {"job_id": "c1", "prompt": "Once upon a time there was a", "max_tokens": 6, "temperature": 0}


async def execute(s, body) -> tuple[dict, str]:
    events = sse(await (await s.client.post("/execute", json=body)).get_data())
    assert events[-1][0] == "end", events
    return events[0][1], "".join(d["t"] for k, d in events if k == "token")


@pytest.mark.parametrize("sampling", [{"temperature": 0}, {"temperature": 0.9, "seed": 7}],
                         ids=["greedy", "seeded"])
def test_a_longer_prompt_reuses_the_previous_job(serve, sampling):
    async def check(s):
        first = {**FIRST, **sampling}
        started, text = await execute(s, {**first, "cache_prompt": False})  # the engine is shared
        assert started["cached_tokens"] == 0
        longer = {**first, "job_id": "c2", "prompt": first["prompt"] + text + " and then"}
        started, cached_text = await execute(s, longer)
        assert 0 < started["cached_tokens"] < started["prompt_tokens"]
        reused = started["cached_tokens"]
        started, whole_text = await execute(s, {**longer, "job_id": "c3", "cache_prompt": False})
        assert started["cached_tokens"] == 0 and cached_text == whole_text
        metrics = (await (await s.client.get("/metrics")).get_data()).decode()
        assert f"orcd_prompt_tokens_cached_total {reused}" in metrics
    serve(check)


def test_a_worker_without_the_cache_prefills_every_prompt(serve):
    async def check(s):
        await execute(s, FIRST)
        started, _ = await execute(s, {**FIRST, "job_id": "c2"})
        assert started["cached_tokens"] == 0
    serve(check, prompt_cache=False)


def test_cache_prompt_must_be_a_boolean(serve):
    async def check(s):
        r = await s.client.post("/execute", json={**FIRST, "cache_prompt": "yes"})
        assert r.status_code == 400
        assert (await r.get_json())["message"].startswith("cache_prompt: must be a boolean")
        r = await s.client.post("/v1/completions", json={"prompt": "Hi", "cache_prompt": 1})
        assert r.status_code == 400 and (await r.get_json())["error"]["param"] == "cache_prompt"
    serve(check)


def test_openai_usage_reports_cached_tokens(serve):
    async def check(s):
        body = {"prompt": FIRST["prompt"], "max_tokens": 4, "temperature": 0}
        whole = await (await s.client.post("/v1/completions", json={**body, "cache_prompt": False})).get_json()
        assert whole["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
        again = await (await s.client.post("/v1/completions", json=body)).get_json()
        cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert cached == again["usage"]["prompt_tokens"] - 2  # all but the last two prompt tokens
        r = await s.client.post("/v1/completions", json={**body, "stream": True, "cache_prompt": False,
                                                          "stream_options": {"include_usage": True}})
        chunks = [block.removeprefix("data: ") for block in (await r.get_data()).decode().split("\n\n") if block]
        assert json.loads(chunks[-2])["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    serve(check)


def conversation(url: str, turns: int, **sampling) -> tuple[list[str], list[int]]:
    """Each turn resends the story so far, as a chat client does: (texts, cached tokens)."""
    story, texts, cached = "The robot walked into the old library and", [], []
    for turn in range(turns):
        body = {"prompt": story, "max_tokens": 8, **sampling}
        answer = httpx.post(f"{url}/v1/completions", json=body, timeout=300).json()
        texts.append(answer["choices"][0]["text"])
        cached.append(answer["usage"]["prompt_tokens_details"]["cached_tokens"])
        story += texts[-1] + (" Then it", " Later", " At last it")[turn % 3]
    return texts, cached


@pytest.mark.parametrize("sampling", [{"temperature": 0}, {"temperature": 0.8, "seed": 11}],
                         ids=["greedy", "seeded"])
def test_a_real_worker_answers_a_conversation_the_same_with_and_without_the_cache(smollm2_path, sampling):
    with started_worker(str(smollm2_path), "cpu", "--ctx", "512") as (server, _):
        texts, cached = conversation(server.url, 3, **sampling)
        uncached_texts, none = conversation(server.url, 3, cache_prompt=False, **sampling)
    assert cached[0] == 0 and all(n > 0 for n in cached[1:]) and set(none) == {0}
    assert texts == uncached_texts


def test_no_prompt_cache_turns_it_off_for_the_worker(tiny_model, monkeypatch):
    monkeypatch.setenv("ORCD_NO_PROMPT_CACHE", "1")
    with started_worker(str(tiny_model), "cpu", "--ctx", "256") as (server, _):
        _, cached = conversation(server.url, 2, temperature=0)
    assert cached == [0, 0]
