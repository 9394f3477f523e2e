"""GET /health is answered in front of Quart (orcd/server/health.py) from the state the Quart
route serves too; during a job it says busy without waiting for the job's tokens; after a
request whose body the worker would not read it is asked on a fresh connection."""
import asyncio

from orcd.server.health import health_first, response


def test_get_is_answered_before_quart_with_the_route_s_fields(serve):
    async def check(s):
        fast = await s.client.get("/health")
        assert fast.status_code == 200 and fast.mimetype == "application/json"
        assert int(fast.headers["content-length"]) == len(await fast.get_data())
        head = await s.client.head("/health")  # the GET's headers, no body (below)
        assert head.status_code == 200 and head.mimetype == "application/json"
        assert await head.get_data() == b""
        body = await fast.get_json()
        assert set(body) == set(s.state.health_now()) and body["busy"] is False
        assert (await s.client.post("/health")).status_code == 405
    serve(check)


class FixedHealth:
    """A state whose health does not move between two requests (uptime does in a worker's)."""
    def health_now(self) -> dict:
        return {"status": "healthy", "uptime_seconds": 12.345, "busy": False}


def answer(method: str) -> list[dict]:
    """The ASGI messages health_first sends for METHOD /health (the app behind it unused)."""
    sent = []

    async def send(message):
        sent.append(message)

    async def unused(scope, receive, send):
        raise AssertionError("GET and HEAD /health are answered in front of the app")

    scope = {"type": "http", "path": "/health", "method": method}
    asyncio.run(health_first(unused, FixedHealth())(scope, None, send))
    return sent


def test_head_gets_the_get_s_headers_without_its_body():
    get, head = answer("GET"), answer("HEAD")
    assert head[0] == get[0] == {"type": "http.response.start", "status": 200,
                                 "headers": response(FixedHealth())[0]}
    assert int(dict(get[0]["headers"])[b"content-length"]) == len(get[1]["body"])
    assert head[1]["body"] == b"" and get[1]["body"] == response(FixedHealth())[1]


def test_health_during_a_job_says_busy(serve, long_seed):
    async def check(s):
        body = {"job_id": "h1", "prompt": "Once upon a time", "max_tokens": 200,
                "temperature": 1.0, "seed": long_seed}
        job = asyncio.ensure_future(s.client.post("/execute", json=body))
        while not s.state.runner.busy:
            await asyncio.sleep(0.001)
        assert (await (await s.client.get("/health")).get_json())["busy"] is True
        await s.client.post("/cancel", json={"job_id": "h1"})
        await job
    serve(check)


def test_an_oversized_body_closes_its_connection(tiny_model):
    """The unread rest of the body makes the connection unusable: the 400 says Connection:
    close, so a keep-alive client (here httpx) asks /health on a new one."""
    import httpx

    from orcd.bench.http_client import started_worker
    with started_worker(str(tiny_model), "cpu") as (server, _), httpx.Client(base_url=server.url) as http:
        for _ in range(5):
            r = http.post("/execute", content=b" " * (2 << 20), headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.headers["connection"] == "close"
            assert r.json()["message"].startswith("body: larger than")
            assert http.get("/health").json()["busy"] is False
