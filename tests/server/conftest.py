"""The server under test runs the real NumPy engine on a tiny synthetic qwen2 file."""
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

import httpx

import pytest

from orcd.engine import create_engine
from orcd.engine.sampling import SamplingParams
from orcd.testing.synth import write_model
from served import CTX, LONG_PROMPT, Served


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("server") / "qwen2.gguf", "qwen2", preset="tiny", quant="Q8_0")


@pytest.fixture(scope="session")
def engine(tiny_model):
    e = create_engine("cpu")
    e.load(tiny_model, CTX)
    return e


@pytest.fixture(scope="session")
def long_seed(engine):
    """A seed whose job from PROMPT runs 200 tokens without end-of-sequence: the tiny random
    model draws EOS now and then, and a "long" job must still be running when a test acts."""
    ids = engine.tokenizer.encode(LONG_PROMPT, add_special=True, parse_special=True)
    ends = set(engine.tokenizer.eot_ids) | {engine.tokenizer.eos_id}
    for seed in range(1, 100):
        out = list(engine.generate(ids, SamplingParams(seed=seed), 200, ends, threading.Event()))
        if len(out) == 200 and out[-1] not in ends:
            return seed
    raise AssertionError("no seed in 1..99 runs 200 tokens without EOS")


@pytest.fixture
def serve(engine):
    """serve(coroutine_function, **options): run it with a Served app in a fresh loop."""
    def run(test, **options):
        async def main():
            return await test(Served(engine, **options))
        return asyncio.run(main())
    return run


def serve_cpu(model, tmp_path_factory, ctx=256):
    """`orcd serve --device cpu` on a free port until the fixture ends; yields /v1's URL."""
    log = open(tmp_path_factory.mktemp("openai") / "serve.log", "w+")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "orcd.cli", "serve", "--device", "cpu", "--model",
                             str(model), "--port", str(port), "--ctx", str(ctx)],
                            stderr=log, env={"OPENBLAS_NUM_THREADS": "1", **os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # the real Qwen file loads in about 20 s; CI may be slow
    while True:
        try:
            httpx.get(url + "/health")
            break
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, open(log.name).read()
            time.sleep(0.1)
    yield url + "/v1"
    proc.terminate()
    assert proc.wait(10) == 0
    log.close()


@pytest.fixture(scope="session")
def base_url(tiny_model, tmp_path_factory):
    """A real `orcd serve --device cpu` on the tiny model, shared by the client tests."""
    yield from serve_cpu(tiny_model, tmp_path_factory)


@pytest.fixture(scope="session")
def smollm2_url(smollm2_path, tmp_path_factory):
    """The same on the bundled SmolLM2, for the client libraries' tests: real text."""
    yield from serve_cpu(smollm2_path, tmp_path_factory, ctx=1024)


@pytest.fixture(scope="session")
def qwen_url(tmp_path_factory):
    """The same on the real Qwen2.5-Coder file (`make models`), for the tool-call judges."""
    from orcd.models import real_path
    try:
        path = real_path("qwen2.5-coder-0.5b")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield from serve_cpu(path, tmp_path_factory, ctx=1024)
