"""Steps that run jobs through /execute and check the stream."""
import json
import time

from behave import then, when

from orcd.testing.worker import Stream

PROMPTS = {
    "story": "Once upon a time, in a small village,",
    "japanese": "日本の首都は東京です。東京は",
    "emoji": "Reply with three emoji: 🎉",
}


def body_from(context, prompt_key: str) -> dict:
    body = {"job_id": f"job-{time.monotonic_ns()}", "prompt": PROMPTS.get(prompt_key, prompt_key)}
    for row in context.table or ():
        body[row["field"]] = json.loads(row["value"])
    return body


def run_job(context, body: dict) -> Stream:
    stream = Stream(context.worker, body)
    assert stream.status == 200, (stream.status, stream.response.read())
    stream.finish()
    context.stream = stream
    context.texts = getattr(context, "texts", []) + [stream.text]
    return stream


@when('I execute "{prompt}" with')
def step_execute_with(context, prompt):
    context.body = body_from(context, prompt)
    run_job(context, context.body)


@when('I execute "{prompt}" again with')
def step_execute_again(context, prompt):
    step_execute_with(context, prompt)


@when("I execute the same request again")
def step_same_again(context):
    run_job(context, {**context.body, "job_id": context.body["job_id"] + "-again"})


@then("the events are started, tokens and one {terminal}")
def step_order(context, terminal):
    kinds = [k for k, _ in context.stream.events if k != "metrics"]
    assert kinds[0] == "started" and kinds[-1] == terminal, kinds
    assert set(kinds[1:-1]) <= {"token"}, kinds
    indices = [d["i"] for k, d in context.stream.events if k == "token"]
    assert indices == sorted(set(indices)) and (not indices or indices[0] >= 0), indices


@then("the started event carries the job, model, time, seed and prompt size")
def step_started(context):
    kind, data = context.stream.events[0]
    assert set(data) == {"job_id", "model", "started_at", "seed", "prompt_tokens", "cached_tokens"}, data
    assert data["job_id"] == context.body["job_id"] and data["started_at"].endswith("Z")
    assert data["prompt_tokens"] > 0 and 0 <= data["seed"] < 2**64
    assert 0 <= data["cached_tokens"] < data["prompt_tokens"]
    if "seed" in context.body:
        assert data["seed"] == context.body["seed"]


@then('the end event says "{reason}" after {count:d} tokens')
def step_end(context, reason, count):
    kind, data = context.stream.terminal
    assert kind == "end", context.stream.terminal
    assert set(data) == {"tokens_out", "decode_time_ms", "stop_reason", "prompt_tokens"}, data
    assert (data["stop_reason"], data["tokens_out"]) == (reason, count), data


@then("the job ends with end")
def step_ends(context):
    assert context.stream.terminal[0] == "end", context.stream.terminal


@then("both texts are the same")
def step_same_text(context):
    assert len(context.texts) >= 2 and context.texts[-1] == context.texts[-2], context.texts[-2:]


@then("the texts are the same as greedy")
def step_same_as_greedy(context):
    greedy = context.texts[0]
    assert all(t == greedy for t in context.texts[1:]), context.texts


@when("I pick a stop string from the middle of that text")
def step_pick_stop(context):
    text = context.stream.text
    stripped = text.strip()
    assert len(stripped) >= 6, f"too little text to pick a stop string from: {text!r}"
    middle = text.index(stripped) + len(stripped) // 2
    context.stop = text[middle:middle + 2]
    context.full_text = text


@when("I execute the same request with that stop string")
def step_with_stop(context):
    run_job(context, {**context.body, "job_id": context.body["job_id"] + "-stop", "stop": [context.stop]})


@then("the text ends just before the stop string")
def step_stopped(context):
    kind, data = context.stream.terminal
    assert kind == "end" and data["stop_reason"] == "stop", context.stream.terminal
    assert context.stream.text == context.full_text[:context.full_text.index(context.stop)], \
        (context.stream.text, context.full_text, context.stop)


@then("every token text is valid UTF-8")
def step_utf8(context):
    for kind, data in context.stream.events:
        if kind == "token":
            data["t"].encode("utf-8")  # a lone surrogate (half a code point) raises here


@then("no code point was split between tokens")
def step_no_split(context):
    """A real model writes valid UTF-8, so a replacement character means a split code point."""
    text = context.stream.text
    if context.stream.terminal[1].get("stop_reason") == "max_tokens":
        text = text.rstrip("\ufffd")  # the last token may stop inside a code point; flush marks it
    assert "\ufffd" not in text, context.stream.text


@then("the text has characters beyond ASCII")
def step_non_ascii(context):
    assert any(ord(c) > 127 for c in context.stream.text), context.stream.text


@when("I cancel that job")
def step_cancel(context):
    job_id = context.stream.events[0][1]["job_id"]
    context.cancel_sent = time.monotonic()
    response = context.worker.http.post("/cancel", json={"job_id": job_id})
    assert response.status_code == 202, response.text
    context.stream.finish()


@then('the stream ends with error "{code}" and retriable {retriable}')
def step_error(context, code, retriable):
    context.stream.finish()
    kind, data = context.stream.terminal
    assert kind == "error" and data["code"] == code, context.stream.terminal
    assert data["retriable"] is json.loads(retriable), data


@then("cancelling it again is accepted too")
def step_cancel_again(context):
    for job_id in (context.stream.events[0][1]["job_id"], "never-existed"):
        assert context.worker.http.post("/cancel", json={"job_id": job_id}).status_code == 202


@when("the client disconnects")
def step_disconnect(context):
    context.stream.close()


@then("the worker is idle again and takes the next job")
def step_idle_again(context):
    context.worker.wait_idle()
    context.body = {"job_id": "after", "prompt": "Hello", "max_tokens": 2, "temperature": 0}
    run_job(context, context.body)
    assert context.stream.terminal[0] == "end", context.stream.terminal


@when("a second job is sent")
def step_second(context):
    context.response = context.worker.http.post("/execute", json={"job_id": "second", "prompt": "Hi"})


@then('it is refused with {status:d} "{code}", retriable and with Retry-After')
def step_refused(context, status, code):
    r = context.response
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json() == {"code": code, "message": r.json()["message"], "retriable": True}, r.json()
    assert int(r.headers["Retry-After"]) >= 1


@then("the refusal does not name the running job")
def step_busy_anonymous(context):
    running = context.stream.events[0][1]["job_id"]
    assert running not in context.response.json()["message"], context.response.json()


@when("I post to /execute the body {body} as {content_type}")
def step_raw_post(context, body, content_type):
    if body == "<2 MiB of spaces>":
        raw = b"{" + b" " * (2 << 20) + b"}"
    elif body == "<JSON nested 100000 deep>":
        raw = b"[" * 100000 + b"]" * 100000
    elif body == "<a seed of 5000 digits>":
        raw = b'{"job_id": "b", "prompt": "Hi", "seed": ' + b"7" * 5000 + b"}"
    elif body == "<a prompt longer than the context>":
        raw = json.dumps({"job_id": "long", "prompt": "hello " * 5000}).encode()
    else:
        raw = body.encode("utf-8")
    context.response = context.worker.http.post("/execute", content=raw,
                                                headers={"Content-Type": content_type})


@then('the response is {status:d} with code "{code}" naming "{field}"')
def step_rejected(context, status, code, field):
    r = context.response
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "message", "retriable"} and body["code"] == code, body
    assert field in body["message"] and body["retriable"] is False, body
    context.worker.wait_idle(1.0)  # nothing started
