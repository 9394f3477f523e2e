"""Synthetic GGUF models for the four architectures, written from the same tensor map that
orcd.models checks (expected_tensors), so generator and loader cannot drift apart."""
from __future__ import annotations

import os
import pathlib

import gguf
import numpy as np

from orcd.models.config import QKV_BIAS, ROPE_NEOX, ModelConfig
from orcd.models.tensors import expected_tensors
from orcd.testing.presets import hyper_parameters, vocabulary
from orcd.testing.quant_mix import FILE_TYPE, tensor_type
from orcd.testing.weights import nbytes, tensor_data, tensor_rng


def model_config(arch: str, preset: str = "tiny", **overrides) -> ModelConfig:
    """The config of a synthetic model of `arch`; the tiny presets leave vocab_size to the
    trained vocabulary, so give it here (0 until then)."""
    params = {"vocab_size": 0} | hyper_parameters(arch, preset, overrides)
    return ModelConfig(arch=arch, rope_neox=ROPE_NEOX[arch], qkv_bias=QKV_BIAS[arch], **params)


def hyper_parameter_metadata(cfg: ModelConfig) -> dict:
    a = cfg.arch
    md = {f"{a}.block_count": cfg.block_count, f"{a}.context_length": cfg.context_length,
          f"{a}.embedding_length": cfg.embedding_length,
          f"{a}.feed_forward_length": cfg.feed_forward_length,
          f"{a}.attention.head_count": cfg.head_count,
          f"{a}.attention.head_count_kv": cfg.head_count_kv,
          f"{a}.attention.layer_norm_rms_epsilon": cfg.rms_eps,
          f"{a}.rope.freq_base": cfg.rope_freq_base,
          f"{a}.rope.dimension_count": cfg.rope_dimension_count}
    if cfg.key_length != cfg.embedding_length // cfg.head_count or cfg.value_length != cfg.key_length:
        md |= {f"{a}.attention.key_length": cfg.key_length,
               f"{a}.attention.value_length": cfg.value_length}
    if a == "llama":
        md[f"{a}.vocab_size"] = cfg.vocab_size
    if cfg.rope_scaling_type:
        md |= {f"{a}.rope.scaling.type": cfg.rope_scaling_type,
               f"{a}.rope.scaling.factor": cfg.rope_scaling_factor}
    if cfg.rope_scaling_original_context_length:
        md[f"{a}.rope.scaling.original_context_length"] = cfg.rope_scaling_original_context_length
    if cfg.is_moe:
        md |= {f"{a}.expert_count": cfg.expert_count, f"{a}.expert_used_count": cfg.expert_used_count,
               f"{a}.expert_feed_forward_length": cfg.expert_feed_forward_length,
               f"{a}.attention.sliding_window": cfg.sliding_window}
    return md


def _add(writer: gguf.GGUFWriter, key: str, value) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    else:
        writer.add_string(key, value)


def add_vocab(writer: gguf.GGUFWriter, vocab) -> None:
    writer.add_token_list(vocab.tokens)
    writer.add_token_types([int(t) for t in vocab.token_type])
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    if vocab.scores:
        writer.add_token_scores(vocab.scores)
    for key, value in vocab.metadata.items():
        _add(writer, key, value)


def write_model(path, arch: str, preset: str = "tiny", quant: str = "F32", seed: int = 0, **overrides):
    """Write a complete GGUF model of `arch` to `path` (written to a temporary name, then
    renamed); deterministic in `seed`. `overrides` replace ModelConfig fields of the preset."""
    real = preset == "real"
    vocab = vocabulary(arch, hyper_parameters(arch, preset, overrides).get("vocab_size"), real)
    cfg = model_config(arch, preset, **overrides | {"vocab_size": len(vocab.tokens)})
    tensors = {name: (shape, tensor_type(quant, name, shape, cfg.block_count, cfg.tied_output))
               for name, shape in expected_tensors(cfg).items()}

    path = pathlib.Path(path)
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    writer.add_name(cfg.name)
    writer.add_file_type(FILE_TYPE[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, value in hyper_parameter_metadata(cfg).items():
        _add(writer, key, value)
    add_vocab(writer, vocab)
    for name, (shape, ggml_type) in tensors.items():
        writer.add_tensor_info(name, tuple(reversed(shape)), np.dtype(np.float32),
                               nbytes(shape, ggml_type), raw_dtype=ggml_type)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, (shape, ggml_type) in tensors.items():
            writer.write_tensor_data(tensor_data(name, shape, ggml_type, tensor_rng(seed, name), real))
        writer.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
