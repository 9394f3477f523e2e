"""The OpenAI routes wait for the job slot in a bounded FIFO; /execute still gets 503 at once.

A gate on the engine thread holds the first request in its tokenization, so the slot stays
taken exactly as long as a test needs, whatever the speed of the machine."""
import asyncio
import contextlib
import json
import threading

from orcd.engine import create_engine
from served import CTX, Served

SHORT = {"model": "m", "prompt": "Hello", "max_tokens": 3, "temperature": 0}


@contextlib.asynccontextmanager
async def slot_taken(s):
    """The first request holds the slot until the block ends; yields its task."""
    gate = threading.Event()
    s.state.engine_thread.submit(gate.wait)
    first = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
    await until(lambda: s.state.runner.busy)
    try:
        yield first
    finally:
        gate.set()
    assert (await asyncio.wait_for(first, 30)).status_code == 200


async def until(condition, seconds=10.0):
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_a_second_request_waits_its_turn(serve):
    async def check(s):
        async with slot_taken(s):
            waiting = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
            await until(lambda: len(s.state.runner.queue) == 1)
            health = await (await s.client.get("/health")).get_json()
            assert health["queue_depth"] == 1 and health["busy"] is True
            assert "orcd_queue_depth 1\n" in await (await s.client.get("/metrics")).get_data(as_text=True)
            execute = await s.client.post("/execute", json={"job_id": "x", "prompt": "Hi"})
            assert execute.status_code == 503  # /execute never queues
            assert not waiting.done()
        r = await asyncio.wait_for(waiting, 30)
        assert r.status_code == 200 and (await r.get_json())["usage"]["completion_tokens"] == 3
        assert len(s.state.runner.queue) == 0 and not s.state.runner.busy
    serve(check)


def test_a_full_queue_answers_503(serve):
    async def check(s):
        async with slot_taken(s):
            waiting = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
            await until(lambda: len(s.state.runner.queue) == 1)
            full = await s.client.post("/v1/completions", json=SHORT)
            error = (await full.get_json())["error"]
            assert full.status_code == 503 and error["code"] == "WORKER_BUSY" and "--queue-depth" in error["message"]
            assert full.headers["x-should-retry"] == "true" and full.headers["Retry-After"] == "1"
        assert (await asyncio.wait_for(waiting, 30)).status_code == 200
    serve(check, queue_depth=1)


def test_a_long_wait_answers_503(serve):
    async def check(s):
        async with slot_taken(s):
            r = await s.client.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
            assert r.status_code == 503 and "--queue-timeout-sec" in (await r.get_json())["error"]["message"]
            assert len(s.state.runner.queue) == 0 and s.state.metrics.requests["rejected"] == 1
    serve(check, queue_timeout_sec=0.05)


def test_a_client_that_leaves_the_queue_frees_its_place(serve):
    async def check(s):
        async with slot_taken(s):
            leaving = s.client.request("/v1/completions", method="POST",
                                       headers={"Content-Type": "application/json"})
            await leaving.__aenter__()
            await leaving.send(json.dumps(SHORT).encode())
            await leaving.send_complete()
            await until(lambda: len(s.state.runner.queue) == 1)
            await leaving.disconnect()
            await until(lambda: len(s.state.runner.queue) == 0)
            staying = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
            await until(lambda: len(s.state.runner.queue) == 1)  # depth 1: the place is free again
        assert (await asyncio.wait_for(staying, 30)).status_code == 200
        with contextlib.suppress(Exception):
            await leaving.__aexit__(None, None, None)
    serve(check, queue_depth=1)


def test_waiters_are_served_in_order(serve):
    async def check(s):
        finished = []

        async def request(name):
            r = await s.client.post("/v1/completions", json={**SHORT, "user": name})
            finished.append((name, r.status_code))
        async with slot_taken(s):
            tasks = []
            for name in ("a", "b", "c"):
                tasks.append(asyncio.ensure_future(request(name)))
                await until(lambda: len(s.state.runner.queue) == len(tasks))
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert finished == [("a", 200), ("b", 200), ("c", 200)]
    serve(check)


def test_shutdown_refuses_the_waiters(tiny_model):
    engine = create_engine("cpu")  # shutdown frees the engine: not the shared one
    engine.load(tiny_model, CTX)

    async def check():
        s = Served(engine)
        gate = threading.Event()
        s.state.engine_thread.submit(gate.wait)
        first = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
        await until(lambda: s.state.runner.busy)
        waiting = asyncio.ensure_future(s.client.post("/v1/completions", json=SHORT))
        await until(lambda: len(s.state.runner.queue) == 1)
        assert (await s.client.post("/shutdown", json={})).status_code == 202
        r = await asyncio.wait_for(waiting, 10)
        assert r.status_code == 503 and "shutting down" in (await r.get_json())["error"]["message"]
        gate.set()
        await asyncio.wait_for(first, 30)
    asyncio.run(check())
