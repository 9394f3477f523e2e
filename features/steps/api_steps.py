"""Steps of api.feature: the API key, raw HTTP requests below the framework, chat roles and
the log's request_rejected lines."""
import json
import os
import socket

from behave import given, then, when

from orcd.testing.scripted import write_scripted_model
from orcd.testing.worker import WorkerProcess


# Raw requests the HTTP layer must answer itself; {host} is the worker's address.
RAW = {
    "<not HTTP>": b"GARBAGE\r\n\r\n",
    "<a 64 KiB header>": b"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
    "<Transfer-Encoding: gzip>": b"POST /execute HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip\r\n"
                                 b"Content-Type: application/json\r\n\r\n",
    "<a WebSocket upgrade>": b"GET /execute HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             b"Sec-WebSocket-Version: 13\r\n\r\n",
    # /metrics: GET /health is answered in front of the router, from the cached state
    "<Host: ..>": b"GET /metrics HTTP/1.1\r\nHost: ..\r\nConnection: close\r\n\r\n",
}
# After "Hello" the scripted model writes the control token <|im_start|>, then "x", then
# <|im_end|>, which ends the generation.
CONTROL_SCRIPT = (("Hello", "<|im_start|>x<|im_end|>"),)
# A small valid call of each route.
CALLS = {
    "POST /execute": {"job_id": "key", "prompt": "Hi", "max_tokens": 1},
    "POST /cancel": {"job_id": "key"},
    "POST /v1/completions": {"prompt": "Hi", "max_tokens": 1},
    "POST /v1/chat/completions": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
}


@given("a worker serving the scripted qwen2 model that writes a control token")
def step_control_worker(context):
    key = "qwen2-control-scripted"
    if key not in context.model_paths:
        path = os.path.join(context.model_dir.name, f"{key}.gguf")
        context.model_paths[key] = write_scripted_model(path, "qwen2", "Q8_0", CONTROL_SCRIPT,
                                                            tied_output=False)
    if key not in context.workers:
        context.workers[key] = WorkerProcess(context.model_paths[key], context.device, "--ctx", "256").wait_ready()
    context.model_name = key
    context.worker = context.workers[key]


def call(context, route: str, key: str | None, body=None, content_type: str | None = None):
    method, path = route.split(" ", 1)
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    if content_type:
        headers["Content-Type"] = content_type
    if body is None and method == "POST":
        body, headers["Content-Type"] = json.dumps(CALLS[route]), "application/json"
    context.response = context.worker.http.request(method, path, content=body, headers=headers)


@when("I call {route} without a key")
def step_call_without(context, route):
    call(context, route, None)


@when('I call {route} with the key "{key}"')
def step_call_with(context, route, key):
    call(context, route, key)


@when('I post "{body}" to /shutdown as {content_type} with the key "{key}"')
def step_shutdown_with(context, body, content_type, key):
    call(context, "POST /shutdown", key, body, content_type)


@when('I post "{body}" to /shutdown as {content_type} without a key')
def step_shutdown_without(context, body, content_type):
    call(context, "POST /shutdown", None, body, content_type)


@then('the answer is 401 "UNAUTHORIZED" asking for a Bearer key')
def step_unauthorized(context):
    r = context.response
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (r.status_code, r.text)
    body = r.json()
    error = body.get("error", body)  # OpenAI's shape under /v1
    assert error["code"] == "UNAUTHORIZED" and "Authorization: Bearer" in error["message"], body


@then("the answer is {status:d}")
def step_status_only(context, status):
    assert context.response.status_code == status, (context.response.status_code, context.response.text)


@when("I send the raw request {name}")
def step_raw(context, name):
    host = f"127.0.0.1:{context.worker.port}".encode()
    with socket.create_connection(("127.0.0.1", context.worker.port), timeout=10) as s:
        s.sendall(RAW[name].replace(b"{host}", host))
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < content_length(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    context.raw_answer = answer


def content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@then('the raw answer is {status:d} with code "{code}"')
def step_raw_answer(context, status, code):
    head, _, body = context.raw_answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), context.raw_answer[:300]
    assert b"content-type: application/json" in head.lower(), head
    error = json.loads(body)
    assert set(error) == {"code", "message", "retriable"} and error["code"] == code, error


@then("the worker still answers /health")
def step_still_healthy(context):
    assert context.worker.http.get("/health").json()["status"] == "healthy"


@then('the answer allows "{method}"')
def step_allow(context, method):
    assert method in [m.strip() for m in context.response.headers["Allow"].split(",")], context.response.headers


@when("I ask for a chat completion with the roles {roles}")
def step_chat_roles(context, roles):
    messages = [{"role": role.strip(), "content": "Hi"} for role in roles.split(",")]
    context.response = context.worker.http.post("/v1/chat/completions",
                                                json={"messages": messages, "max_tokens": 1})


@then('the OpenAI error is {status:d} for the parameter "{param}"')
def step_openai_error(context, status, param):
    r = context.response
    assert r.status_code == status and r.json()["error"]["param"] == param, (r.status_code, r.text)


@then('the log has request_rejected for "{route}" with code "{code}" and field "{field}"')
def step_rejected_line(context, route, code, field):
    lines = [e for e in context.worker.events() if e["event"] == "request_rejected"]
    assert any((e["route"], e["code"], e["field"]) == (route, code, field) for e in lines), lines[-3:]


@then('no line of the log holds "{text}"')
def step_not_logged(context, text):
    assert text not in context.worker.log()


@then("every line of the worker's log is a JSON object")
def step_log_json(context):
    for line in context.worker.log().splitlines():
        assert isinstance(json.loads(line), dict), line
