"""Requests through orcd/server/connection.py as hypercorn hands them to the app: the body in
one message, in several or without a length, a body over the limit, and a client that leaves
before its body is complete or in the middle of its stream."""
import asyncio
import json

from served import LONG_PROMPT

MIB = 1 << 20


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "http_version": "1.1", "asgi": {"spec_version": "2.1", "version": "3.0"},
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(b"host", b"127.0.0.1:8080"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {}, "extensions": {}}


def json_headers(length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    return headers + ([(b"content-length", str(length).encode())] if length is not None else [])


def pieces(body: bytes, n: int) -> list[dict]:
    """The body as n http.request messages, as hypercorn queues a body that came in n reads."""
    step = -(-len(body) // n)
    parts = [body[i:i + step] for i in range(0, len(body), step)]
    return [{"type": "http.request", "body": p, "more_body": k < len(parts) - 1} for k, p in enumerate(parts)]


async def call(app, path: str, headers, messages: list[dict], timeout: float = 30.0):
    """One request with `messages` queued for it; the app's response as (status, headers, body)."""
    queue: asyncio.Queue = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    sent = []

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(app(scope(path, headers), queue.get, send), timeout)
    if not sent:
        return None, {}, b""
    return (sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]))


def test_a_body_in_one_or_several_messages_or_without_a_length_is_read_whole(serve):
    body = json.dumps({"job_id": "j-1"}).encode()

    async def check(s):
        for headers, messages in ((json_headers(len(body)), pieces(body, 1)),
                                  (json_headers(len(body)), pieces(body, 3)),
                                  (json_headers(None), pieces(body, 2))):
            status, _, answer = await call(s.app, "/cancel", headers, messages)
            assert (status, json.loads(answer)) == (202, {"job_id": "j-1", "status": "accepted"})
    serve(check)


def test_a_body_over_the_limit_is_refused_without_waiting_for_it(serve):
    async def check(s):
        # nothing of the 2 MiB is queued: the answer must not wait for it
        status, headers, answer = await call(s.app, "/cancel", json_headers(2 * MIB), [], timeout=10)
        assert status == 400 and headers["connection"] == "close"
        assert json.loads(answer)["code"] == "INVALID_REQUEST" and "1 MiB" in json.loads(answer)["message"]
    serve(check)


def test_a_client_gone_before_its_body_is_complete_gets_no_answer(serve):
    async def check(s):
        messages = [{"type": "http.request", "body": b'{"job_', "more_body": True}, {"type": "http.disconnect"}]
        assert await call(s.app, "/execute", json_headers(40), messages) == (None, {}, b"")
        assert not s.state.runner.busy
    serve(check)


def test_a_client_gone_mid_stream_stops_its_job_and_the_request_ends_cleanly(serve, long_seed):
    body = json.dumps({"job_id": "gone", "prompt": LONG_PROMPT, "max_tokens": 200, "seed": long_seed}).encode()

    async def check(s):
        queue: asyncio.Queue = asyncio.Queue()
        for message in pieces(body, 1):
            queue.put_nowait(message)
        bodies = []

        async def send(message):
            if message["type"] == "http.response.body" and message["body"]:
                bodies.append(message["body"])
                if len(bodies) == 2:  # `started` and a token went out: the client leaves
                    queue.put_nowait({"type": "http.disconnect"})

        await asyncio.wait_for(s.app(scope("/execute", json_headers(len(body))), queue.get, send), 30)
        assert not s.state.runner.busy and b"event: end" not in b"".join(bodies)
        cancel = [e for e in s.events() if e["event"] == "cancel"]
        assert [e["msg"] for e in cancel] == ["cancelled: the client disconnected"]
    serve(check)
