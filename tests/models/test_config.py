import pytest

import orcd.gguf
from orcd.errors import ModelLoadError
from orcd.models import config_from_metadata, describe


def test_smollm2_config(smollm2_path):
    with orcd.gguf.open(smollm2_path) as f:
        cfg = describe(f)
    assert (cfg.arch, cfg.block_count, cfg.embedding_length, cfg.feed_forward_length) == ("llama", 30, 576, 1536)
    assert (cfg.head_count, cfg.head_count_kv, cfg.head_dim, cfg.vocab_size) == (9, 3, 64, 49152)
    assert cfg.tied_output and not cfg.rope_neox and not cfg.qkv_bias
    assert cfg.rope_freq_base == 100000.0 and cfg.context_length == 8192


@pytest.mark.real_qwen
def test_real_qwen2_config(qwen2_path):
    with orcd.gguf.open(qwen2_path) as f:
        cfg = describe(f)
    assert (cfg.arch, cfg.block_count, cfg.embedding_length, cfg.head_count, cfg.head_count_kv) == ("qwen2", 24, 896, 14, 2)
    assert (cfg.feed_forward_length, cfg.vocab_size, cfg.context_length) == (4864, 151936, 32768)
    assert cfg.qkv_bias and cfg.rope_neox and not cfg.tied_output
    assert cfg.rope_freq_base == 1e6


def _metadata(**extra):
    md = {"general.architecture": "qwen2", "qwen2.block_count": 2, "qwen2.context_length": 128,
          "qwen2.embedding_length": 64, "qwen2.feed_forward_length": 128,
          "qwen2.attention.head_count": 4, "qwen2.attention.head_count_kv": 2,
          "qwen2.attention.layer_norm_rms_epsilon": 1e-6, "tokenizer.ggml.tokens": ["a"] * 300}
    return md | extra


def test_defaults_follow_llama_cpp():
    cfg = config_from_metadata(_metadata())
    assert cfg.key_length == cfg.value_length == cfg.rope_dimension_count == 16
    assert cfg.rope_freq_base == 10000.0 and cfg.vocab_size == 300 and cfg.rope_scaling_type is None


def test_unsupported_architecture_is_named():
    with pytest.raises(ModelLoadError, match="'mamba'"):
        config_from_metadata(_metadata(**{"general.architecture": "mamba"}))


def test_missing_key_is_named():
    md = _metadata()
    del md["qwen2.block_count"]
    with pytest.raises(ModelLoadError, match="qwen2.block_count"):
        config_from_metadata(md)


@pytest.mark.parametrize("key,value,match", [
    ("qwen2.attention.head_count_kv", 3, "not a multiple"),
    ("qwen2.block_count", -1, "non-negative integer"),
    ("qwen2.attention.layer_norm_rms_epsilon", "small", "must be a number"),
    ("qwen2.rope.dimension_count", 18, "rope.dimension_count"),
])
def test_inconsistent_hyper_parameters(key, value, match):
    with pytest.raises(ModelLoadError, match=match):
        config_from_metadata(_metadata(**{key: value}))


def test_sliding_window_alternates():
    md = {k.replace("qwen2", "gpt-oss"): v for k, v in _metadata().items()} | {
        "general.architecture": "gpt-oss", "gpt-oss.expert_count": 4, "gpt-oss.expert_used_count": 2,
        "gpt-oss.expert_feed_forward_length": 64, "gpt-oss.attention.sliding_window": 128}
    cfg = config_from_metadata(md)
    assert [cfg.uses_sliding_window(i) for i in range(4)] == [True, False, True, False]
