import math

import pytest

import orcd.gguf
from orcd import _cuda
from orcd.commands.inspect import report
from orcd.engine.base import context_for
from orcd.models import ARCHITECTURES, describe, expected_tensors, parameter_count, vram_estimate
from orcd.models.memory import kv_cache_bytes
from orcd.testing.quant_mix import tensor_type
from orcd.testing.synth import model_config
from orcd.testing.weights import nbytes

# None: the engine's default context; 8192 crosses the 512-token prefill chunk many times
CONTEXTS = (None, 2048, 8192)
# each target's typical file (SPEC §6)
QUANT = {"llama": "Q4_1", "qwen2": "Q4_K_M", "phi3": "Q4_K_M", "gpt-oss": "MXFP4"}


def weight_bytes(cfg, quant: str) -> int:
    """The tensor bytes of a synthetic file of cfg in `quant`, without writing it."""
    return sum(nbytes(shape, tensor_type(quant, name, shape, cfg.block_count, cfg.tied_output))
               for name, shape in expected_tensors(cfg).items())


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


@pytest.mark.parametrize("ctx", CONTEXTS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_inspect_shows_what_the_engine_enforces(tiny_model, arch, ctx):
    path = tiny_model(arch, QUANT[arch])
    shown = report(str(path), ctx)["vram_bytes"]
    with orcd.gguf.open(path) as f:  # as CudaEngine.load checks it
        cfg, weights = describe(f), sum(t.nbytes for t in f.tensors.values())
    assert shown["total"] == _cuda.vram_required(cfg, context_for(cfg, ctx), weights)


@pytest.mark.parametrize("ctx", CONTEXTS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_estimate_of_each_real_shape_is_the_enforced_figure(arch, ctx):
    cfg = model_config(arch, "real")
    ctx, weights = context_for(cfg, ctx), weight_bytes(cfg, QUANT[arch])
    estimate = vram_estimate(cfg, weights, ctx)
    assert estimate.total == _cuda.vram_required(cfg, ctx, weights)
    assert estimate.weights == weights and estimate.kv_cache == kv_cache_bytes(cfg, ctx)
    assert estimate.scratch > 0
