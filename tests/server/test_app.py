"""The HTTP app over the real NumPy engine: stream order, validation, busy, cancel, timeout,
health, metrics, shutdown."""
import asyncio
import json

from served import CTX, LONG_PROMPT, Served, sse

JOB = {"job_id": "j1", "prompt": "Hello world", "max_tokens": 4, "temperature": 0}


def long_job(seed: int) -> dict:
    return {**JOB, "prompt": LONG_PROMPT, "max_tokens": 200, "temperature": 1.0, "seed": seed}


async def open_stream(client, body):
    """A streaming /execute whose first chunk (the started event) has arrived."""
    conn = client.request("/execute", method="POST", headers={"Content-Type": "application/json"})
    await conn.__aenter__()
    await conn.send(json.dumps(body).encode())
    await conn.send_complete()
    first = await conn.receive()
    return conn, first


async def read_rest(conn) -> bytes:
    chunks = []
    while True:
        chunk = await conn.receive()
        chunks.append(chunk)
        if b"event: end" in chunk or b"event: error" in chunk:
            return b"".join(chunks)


def test_stream_order_and_payloads(serve):
    async def check(s):
        r = await s.client.post("/execute", json=JOB)
        assert r.status_code == 200 and r.mimetype == "text/event-stream"
        events = sse(await r.get_data())
        kinds = [k for k, _ in events]
        assert kinds[0] == "started" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"token"}
        started, end = events[0][1], events[-1][1]
        assert set(started) == {"job_id", "model", "started_at", "seed", "prompt_tokens", "cached_tokens"}
        assert started["job_id"] == "j1" and started["model"] == "qwen2.gguf"
        assert end["tokens_out"] == 4 and end["stop_reason"] == "max_tokens"
        assert end["prompt_tokens"] == started["prompt_tokens"]
        assert [d["i"] for k, d in events if k == "token"] == list(range(len(kinds) - 2))
        assert not s.state.runner.busy
        names = [e["event"] for e in s.events()]
        assert names == ["execute_start", "execute_end"]
        assert all("prompt" not in e and "text" not in e for e in s.events())
    serve(check)


def test_same_seed_same_stream(serve):
    async def check(s):
        body = {**JOB, "temperature": 1.0, "seed": 5, "max_tokens": 12}
        first = sse(await (await s.client.post("/execute", json=body)).get_data())
        second = sse(await (await s.client.post("/execute", json={**body, "job_id": "j2"})).get_data())
        assert first[1:-1] == second[1:-1]  # every token; the end event carries a time
        assert first[0][1]["seed"] == 5
    serve(check)


def test_bad_requests_start_nothing(serve):
    async def check(s):
        cases = [
            (dict(json={**JOB, "extra": 1}), "extra"),
            (dict(data="{", headers={"Content-Type": "application/json"}), "body"),
            (dict(data=json.dumps(JOB), headers={"Content-Type": "text/plain"}), "Content-Type"),
            (dict(data=b"{" + b" " * (1 << 20) + b"}", headers={"Content-Type": "application/json"}), "body"),
            (dict(json={**JOB, "prompt": "word " * CTX}), "prompt"),
            (dict(json={**JOB, "max_tokens": 513}), "max_tokens"),
        ]
        for kwargs, field in cases:
            r = await s.client.post("/execute", **kwargs)
            body = await r.get_json()
            assert r.status_code == 400, (field, body)
            assert r.headers["x-should-retry"] == "false"
            assert body["code"] == "INVALID_REQUEST" and body["retriable"] is False
            assert body["message"].startswith(field), body
            assert not s.state.runner.busy
        # Nothing started; each rejection is narrated with its route, code and field, never the prompt.
        rejected = [(e["event"], e["route"], e["code"], e["field"]) for e in s.events()]
        assert rejected == [("request_rejected", "POST /execute", "INVALID_REQUEST", f) for _, f in cases]
        assert "word word" not in s.log.getvalue()
    serve(check)


def test_busy_then_cancel(serve, long_seed):
    async def check(s):
        conn, first = await open_stream(s.client, long_job(long_seed))
        assert first.startswith(b"event: started")
        busy = await s.client.post("/execute", json={**JOB, "job_id": "j2"})
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert busy.headers["x-should-retry"] == "true"
        assert await busy.get_json() == {"code": "WORKER_BUSY", "retriable": True,
                                         "message": (await busy.get_json())["message"]}
        # /cancel takes any id: the busy answer must not hand out the running job's
        assert "j1" not in (await busy.get_json())["message"]
        health = await (await s.client.get("/health")).get_json()
        assert health["busy"] is True
        r = await s.client.post("/cancel", json={"job_id": "j1"})
        assert r.status_code == 202
        kind, data = sse(await read_rest(conn))[-1]
        assert (kind, data["code"], data["retriable"]) == ("error", "CANCELLED", False)
        await conn.__aexit__(None, None, None)
        assert (await s.client.post("/cancel", json={"job_id": "j1"})).status_code == 202
        assert (await s.client.post("/cancel", json={"job_id": 5})).status_code == 400
        assert not s.state.runner.busy
        assert s.state.metrics.requests["cancelled"] == 1
    serve(check)


def test_disconnect_frees_the_slot(serve, long_seed):
    async def check(s):
        conn, _ = await open_stream(s.client, long_job(long_seed))
        await conn.disconnect()
        await conn.__aexit__(None, None, None)
        assert not s.state.runner.busy
        r = await s.client.post("/execute", json={**JOB, "job_id": "after"})
        assert sse(await r.get_data())[-1][0] == "end"
    serve(check)


def test_inference_timeout(serve, long_seed):
    async def check(s):
        r = await s.client.post("/execute", json=long_job(long_seed))
        kind, data = sse(await r.get_data())[-1]
        assert (kind, data["code"]) == ("error", "INFERENCE_TIMEOUT")
        assert "--inference-timeout-sec" in data["message"]
    serve(check, timeout_sec=0.001)  # far shorter than 200 decode steps take on any CPU


def test_health_and_metrics(serve):
    async def check(s):
        health = await (await s.client.get("/health")).get_json()
        assert set(health) == {"status", "worker_id", "model", "arch", "resident", "quant_kind",
                               "vram_bytes_used", "tokenizer_kind", "vocab_size", "context_length",
                               "uptime_seconds", "busy", "gpu_device", "gpu_name", "sm",
                               "cuda_runtime_version", "device", "queue_depth"}
        assert (health["status"], health["arch"], health["device"]) == ("healthy", "qwen2", "cpu")
        assert (health["context_length"], health["quant_kind"], health["busy"]) == (CTX, "Q8_0", False)
        await (await s.client.post("/execute", json=JOB)).get_data()
        text = await (await s.client.get("/metrics")).get_data(as_text=True)
        assert 'orcd_requests_total{outcome="ok"} 1' in text
        assert "orcd_tokens_generated_total 4" in text
        assert 'orcd_time_to_first_token_seconds_count 1' in text
        assert 'orcd_inter_token_seconds_count 3' in text  # 4 tokens, 3 gaps
    serve(check)


def test_unknown_route_is_json(serve):
    async def check(s):
        r = await s.client.get("/nope")
        assert r.status_code == 404 and (await r.get_json())["code"] == "INVALID_REQUEST"
    serve(check)


def test_shutdown_cancels_and_refuses(tiny_model, long_seed):
    from orcd.engine import create_engine

    async def check():
        engine = create_engine("cpu")
        engine.load(tiny_model, CTX)
        s = Served(engine)
        conn, _ = await open_stream(s.client, long_job(long_seed))
        for refused in (await s.client.post("/shutdown"),  # a form post from a web page
                        await s.client.post("/shutdown", data="a=1", headers={"Content-Type": "text/plain"})):
            assert refused.status_code == 400 and (await refused.get_json())["message"].startswith("Content-Type")
        assert (await s.client.post("/shutdown", json={})).status_code == 202
        kind, data = sse(await read_rest(conn))[-1]
        # the job may run on another worker: retriable, unlike a client's cancel
        assert (kind, data["code"], data["retriable"]) == ("error", "CANCELLED", True)
        refused = await s.client.post("/execute", json={**JOB, "job_id": "late"})
        assert refused.status_code == 503
        await asyncio.wait_for(s.state.stopped.wait(), 5)
        assert s.state.runner.drained and engine.model is None
        assert "shutdown" in [e["event"] for e in s.events()]
    asyncio.run(check())


def test_execute_logprobs_on_token_events(serve):
    async def check(s):
        events = sse(await (await s.client.post("/execute", json={**JOB, "logprobs": 2})).get_data())
        tokens = [d for k, d in events if k == "token"]
        entries = [e for d in tokens for e in d["logprobs"]]
        assert len(entries) == 4 and all(len(e["top_logprobs"]) == 2 for e in entries)
        assert all(set(e) == {"id", "token", "logprob", "text_offset", "top_logprobs"} for e in entries)
        plain = sse(await (await s.client.post("/execute", json={**JOB, "job_id": "j2"})).get_data())
        assert all("logprobs" not in d for k, d in plain if k == "token")
        assert [d["t"] for k, d in plain if k == "token"] == [d["t"] for d in tokens]
        r = await s.client.post("/execute", json={**JOB, "job_id": "j3", "logprobs": 21})
        assert r.status_code == 400 and (await r.get_json())["message"].startswith("logprobs")
    serve(check)


def test_api_key_guards_every_route_but_the_probes(serve):
    """--api-key adds the authorize hook; without one no request needs a key."""
    from orcd.server.app import create_app

    async def check(s):
        guarded = create_app(s.state, api_key="k").test_client()
        assert (await guarded.post("/execute", json=JOB)).status_code == 401
        assert (await guarded.post("/cancel", json={"job_id": "j1"})).status_code == 401
        assert (await guarded.get("/v1/models")).status_code == 401
        assert (await guarded.get("/health")).status_code == 200
        assert (await guarded.get("/metrics")).status_code == 200
        authorized = await guarded.get("/v1/models", headers={"Authorization": "Bearer k"})
        assert authorized.status_code == 200
        assert (await s.client.get("/v1/models")).status_code == 200
        assert (await s.client.post("/cancel", json={"job_id": "j1"})).status_code == 202
    serve(check)


def test_ensure_async_passes_coroutines_through_and_wraps_the_rest(serve):
    """WorkerApp reads a coroutine function's flag from its code; the rest goes to Quart."""
    async def check(s):
        async def route():
            return 1

        class Hooks:
            async def method(self):
                return 2

        hooks = Hooks()
        assert s.app.ensure_async(route) is route and s.app.ensure_async(hooks.method) == hooks.method
        assert await s.app.ensure_async(lambda: 3)() == 3  # a plain function runs off the loop
    serve(check)


def test_a_host_idna_cannot_encode_is_refused_before_the_api_key_is_asked(serve):
    from orcd.server.app import create_app

    async def check(s):
        for client in (s.client, create_app(s.state, api_key="k").test_client()):
            r = await client.post("/cancel", json={"job_id": "j1"}, headers={"Host": ".."})
            body = await r.get_json()
            assert (r.status_code, body["code"]) == (400, "INVALID_REQUEST") and body["message"].startswith("Host")
    serve(check)
