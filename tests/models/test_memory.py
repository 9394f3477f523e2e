import math

import orcd.gguf
from orcd.models import describe, parameter_count, vram_estimate
from orcd.models.memory import kv_cache_bytes
from orcd.testing.synth import model_config


def test_parameter_count_is_the_file_element_count(smollm2_path):
    with orcd.gguf.open(smollm2_path) as f:
        cfg = describe(f)
        elements = sum(math.prod(t.shape) for t in f.tensors.values())
    assert parameter_count(cfg) == elements == 134_515_008


def test_kv_cache_is_fp16_k_and_v_for_every_layer():
    cfg = model_config("qwen2", "real", vocab_size=151936)
    assert kv_cache_bytes(cfg, 8192) == 24 * 2 * (2 * 64) * 2 * 8192  # layers * K,V * kv dim * fp16 * ctx


def test_estimate_adds_up_and_grows_with_context():
    cfg = model_config("gpt-oss", "real", vocab_size=201088)
    small, large = vram_estimate(cfg, 10**9, 4096), vram_estimate(cfg, 10**9, 8192)
    assert small.total == small.weights + small.kv_cache + small.scratch
    assert large.kv_cache == 2 * small.kv_cache and large.scratch > small.scratch
