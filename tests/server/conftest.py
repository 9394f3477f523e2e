"""The server under test runs the real NumPy engine on a tiny synthetic qwen2 file."""
import asyncio
import threading

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
