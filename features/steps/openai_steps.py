"""Steps of openai_clients.feature: the /v1 routes driven with plain HTTP, as any client does."""
import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
from behave import then, when

from orcd.errors import CODES
from orcd.testing.schemas import PERSON


def post(context, route: str, body: dict) -> dict:
    r = context.worker.http.post(route, json={"model": "smollm2", **body}, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


@when('I ask /v1/completions for {n:d} tokens of "{prompt}" with logprobs {top:d}')
def step_logprobs(context, n, prompt, top):
    context.answer = post(context, "/v1/completions", {"prompt": prompt, "max_tokens": n, "temperature": 0,
                                                       "logprobs": top})
    context.top = top


@then("every token has a logprob and at most {top:d} alternatives")
def step_every_token(context, top):
    lp = context.answer["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) > 0
    assert all(v <= 0 for v in lp["token_logprobs"]) and all(0 < len(t) <= top for t in lp["top_logprobs"])


@then("the most likely alternative of each token is the token itself")
def step_greedy_top(context):
    lp = context.answer["choices"][0]["logprobs"]
    for token, logprob, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        assert max(top.values()) == logprob and top[token] == logprob


@when('I ask /v1/completions to score "{prompt}"')
def step_score(context, prompt):
    context.prompt = prompt
    context.answer = post(context, "/v1/completions", {"prompt": prompt, "max_tokens": 0, "echo": True,
                                                       "logprobs": 0})


@when('a client asks /v1/completions to score "{prompt}"')
def step_score_raw(context, prompt):
    context.response = context.worker.http.post("/v1/completions", json={
        "prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 0}, timeout=300)


@then('the answer is error "{code}" with x-should-retry {retry}')
def step_openai_error(context, code, retry):
    r = context.response
    assert r.status_code == CODES[code][0] and r.json()["error"]["code"] == code, (r.status_code, r.text)
    assert r.headers["x-should-retry"] == retry, r.headers


@then("the text is the prompt and its first token has no logprob")
def step_echo_text(context):
    choice = context.answer["choices"][0]
    assert choice["text"] == context.prompt and choice["logprobs"]["token_logprobs"][0] is None


@then("every other prompt token has a negative logprob")
def step_prompt_logprobs(context):
    values = context.answer["choices"][0]["logprobs"]["token_logprobs"][1:]
    assert values and all(v < 0 for v in values)


@when("I ask /v1/chat/completions for a person as JSON under a schema at temperature 1")
def step_json(context):
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    context.answer = post(context, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Describe a person as JSON."}], "max_tokens": 200,
        "temperature": 1.0, "seed": 5, "response_format": fmt})


@then("the answer parses and validates against the schema")
def step_validates(context):
    choice = context.answer["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


@when("{n:d} chat requests arrive at once")
def step_overlap(context, n):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 12}
    with ThreadPoolExecutor(n) as pool:
        context.statuses = list(pool.map(
            lambda _: context.worker.http.post("/v1/chat/completions", json=body, timeout=300).status_code, range(n)))


@then("all {n:d} are answered with {status:d}")
def step_all(context, n, status):
    assert context.statuses == [status] * n, context.statuses
