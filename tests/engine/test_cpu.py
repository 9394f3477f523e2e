import threading

import numpy as np
import pytest

from orcd.engine import create_engine
from orcd.engine.sampling import SamplingParams
from orcd.errors import InvalidRequest
from orcd.reference import KVCache, forward
from orcd.testing.synth import write_model

GREEDY = SamplingParams(temperature=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic llama on the CPU engine, context 32."""
    path = write_model(tmp_path_factory.mktemp("cpu") / "llama.gguf", "llama", seed=5)
    engine = create_engine("cpu")
    engine.load(path, 32)
    return engine


def generate(engine, prompt, max_tokens, params=GREEDY, stop_ids=()):
    return list(engine.generate(prompt, params, max_tokens, set(stop_ids), threading.Event()))


def test_load_reports_progress_and_health(tmp_path):
    path = write_model(tmp_path / "qwen2.gguf", "qwen2", quant="Q8_0")
    engine, seen = create_engine("cpu"), []
    engine.load(path, None, seen.append)
    assert seen == [0, 25, 50, 75, 100]
    health = engine.health()
    assert health | {"vram_bytes_used": 0, "device": "cpu", "arch": "qwen2", "quant_kind": "Q8_0",
                     "model": "qwen2.gguf", "context_length": 4096} == health
    assert engine.device == "cpu" and engine.config.arch == "qwen2"


def test_greedy_generation_is_the_reference_argmax(tiny):
    prompt = [5, 17, 42, 8]
    ids = generate(tiny, prompt, 10)
    cache = KVCache(tiny.config, 32)
    logits = forward(tiny.model, prompt, cache)
    for token in ids:
        assert token == int(np.argmax(logits[-1]))
        logits = forward(tiny.model, [token], cache)


def test_stop_id_is_yielded_last(tiny):
    first = generate(tiny, [5, 17], 1)[0]
    assert generate(tiny, [5, 17], 10, stop_ids={first}) == [first]


def test_generation_ends_when_the_context_is_full(tiny):
    # 10 prompt tokens leave 22 cache slots; the token sampled from the last one needs none
    assert len(generate(tiny, list(range(10)), 100)) == 23


def test_prompt_that_fills_the_context_is_refused(tiny):
    with pytest.raises(InvalidRequest, match="prompt"):
        generate(tiny, list(range(32)), 1)


@pytest.mark.parametrize("n", [0, 32])
def test_prompt_length_error_names_the_field_and_the_range(tiny, n):
    with pytest.raises(InvalidRequest) as e:
        tiny.prompt_ids(list(range(n)))
    assert e.value.field == "prompt" and f"{n} tokens" in e.value.message and "1 to 31" in e.value.message


def test_sampled_generation_replays(tiny):
    params = SamplingParams(temperature=1.0, seed=99)
    assert generate(tiny, [1, 2, 3], 12, params) == generate(tiny, [1, 2, 3], 12, params)


def test_create_engine_refuses_an_unknown_device():
    with pytest.raises(ValueError, match="'cuda' or 'cpu'"):
        create_engine("tpu")


def test_long_prompt_is_prefilled_in_chunks_with_the_same_result(tmp_path, monkeypatch):
    import orcd.engine.cpu as cpu
    engine = create_engine("cpu")
    engine.load(write_model(tmp_path / "qwen2.gguf", "qwen2", seed=2), 64)
    prompt = list(range(40, 80))
    whole = generate(engine, prompt, 8)
    monkeypatch.setattr(cpu, "PREFILL_CHUNK", 7)
    assert generate(engine, prompt, 8) == whole
