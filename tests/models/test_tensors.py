import pytest

import orcd.gguf
from orcd.errors import ModelLoadError
from orcd.models import check_tensors, describe, expected_tensors
from orcd.testing.synth import model_config


def _shapes(path):
    with orcd.gguf.open(path) as f:
        return describe(f), {n: tuple(t.shape) for n, t in f.tensors.items()}


def test_expected_tensors_are_the_smollm2_file(smollm2_path):
    cfg, shapes = _shapes(smollm2_path)
    assert expected_tensors(cfg) == shapes  # same names, same shapes, no output.weight (tied)


@pytest.mark.real_qwen
def test_expected_tensors_are_the_real_qwen2_file(qwen2_path):
    cfg, shapes = _shapes(qwen2_path)
    assert expected_tensors(cfg) == shapes
    assert shapes["blk.0.attn_k.bias"] == (128,) and shapes["output.weight"] == (896, 151936)


def test_missing_tensor_is_named(smollm2_path):
    cfg, shapes = _shapes(smollm2_path)
    del shapes["blk.7.ffn_up.weight"]
    with pytest.raises(ModelLoadError, match=r"lacks tensor blk\.7\.ffn_up\.weight"):
        check_tensors(cfg, shapes)


def test_extra_tensor_is_named(smollm2_path):
    cfg, shapes = _shapes(smollm2_path)
    shapes["blk.30.attn_norm.weight"] = (576,)
    with pytest.raises(ModelLoadError, match=r"unexpected tensor blk\.30\.attn_norm\.weight"):
        check_tensors(cfg, shapes)


def test_misshaped_tensor_is_named(smollm2_path):
    cfg, shapes = _shapes(smollm2_path)
    shapes["blk.3.attn_k.weight"] = (576, 576)
    with pytest.raises(ModelLoadError, match=r"blk\.3\.attn_k\.weight has shape \[576, 576\]"):
        check_tensors(cfg, shapes)


def test_phi3_fused_tensors_and_optional_rope_factors():
    cfg = model_config("phi3", "real", vocab_size=32064)
    t = expected_tensors(cfg)
    assert t["blk.0.attn_qkv.weight"] == (3072, 3 * 3072) and t["blk.0.ffn_up.weight"] == (3072, 2 * 8192)
    check_tensors(cfg, t | {"rope_factors_long.weight": (48,), "rope_factors_short.weight": (48,)})
    with pytest.raises(ModelLoadError, match="without its pair"):
        check_tensors(cfg, t | {"rope_factors_long.weight": (48,)})


def test_gpt_oss_real_shapes():
    cfg = model_config("gpt-oss", "real", vocab_size=201088)
    t = expected_tensors(cfg)
    assert t["blk.0.attn_q.weight"] == (2880, 4096) and t["blk.0.attn_output.weight"] == (4096, 2880)
    assert t["blk.0.ffn_gate_exps.weight"] == (2880, 2880, 32) and t["blk.0.ffn_down_exps.bias"] == (2880, 32)
    assert t["blk.0.attn_sinks.weight"] == (64,) and t["blk.0.ffn_gate_inp.bias"] == (32,)
    assert "blk.0.post_attention_norm.weight" in t and "output.weight" in t
