"""The tensor map of each architecture: names and shapes exactly as llama.cpp creates them
(llama-model.cpp, load_tensors). Shapes are in GGUF order: shape[0] is the contiguous row."""
from __future__ import annotations

from orcd.errors import ModelLoadError
from orcd.models.config import ModelConfig, config_from_metadata


def _attention(cfg: ModelConfig, i: int) -> dict:
    d, blk = cfg.embedding_length, f"blk.{i}"
    if cfg.arch == "phi3":
        t = {f"{blk}.attn_qkv.weight": (d, cfg.q_dim + cfg.k_dim + cfg.v_dim)}
    else:
        t = {f"{blk}.attn_q.weight": (d, cfg.q_dim),
             f"{blk}.attn_k.weight": (d, cfg.k_dim),
             f"{blk}.attn_v.weight": (d, cfg.v_dim)}
    if cfg.qkv_bias:
        t |= {f"{blk}.attn_q.bias": (cfg.q_dim,),
              f"{blk}.attn_k.bias": (cfg.k_dim,),
              f"{blk}.attn_v.bias": (cfg.v_dim,)}
    t[f"{blk}.attn_output.weight"] = (cfg.head_count * cfg.value_length, d)
    if cfg.arch == "gpt-oss":
        t[f"{blk}.attn_output.bias"] = (d,)
        t[f"{blk}.attn_sinks.weight"] = (cfg.head_count,)
    return t


def _feed_forward(cfg: ModelConfig, i: int) -> dict:
    d, ff, blk = cfg.embedding_length, cfg.feed_forward_length, f"blk.{i}"
    if cfg.arch == "phi3":
        # ffn_up holds gate and up stacked: rows [0, ff) are the gate, [ff, 2 ff) the up.
        return {f"{blk}.ffn_up.weight": (d, 2 * ff), f"{blk}.ffn_down.weight": (ff, d)}
    if cfg.arch == "gpt-oss":
        n, ffx = cfg.expert_count, cfg.expert_feed_forward_length
        return {f"{blk}.ffn_gate_inp.weight": (d, n), f"{blk}.ffn_gate_inp.bias": (n,),
                f"{blk}.ffn_gate_exps.weight": (d, ffx, n), f"{blk}.ffn_gate_exps.bias": (ffx, n),
                f"{blk}.ffn_up_exps.weight": (d, ffx, n), f"{blk}.ffn_up_exps.bias": (ffx, n),
                f"{blk}.ffn_down_exps.weight": (ffx, d, n), f"{blk}.ffn_down_exps.bias": (d, n)}
    return {f"{blk}.ffn_gate.weight": (d, ff), f"{blk}.ffn_up.weight": (d, ff),
            f"{blk}.ffn_down.weight": (ff, d)}


def _block(cfg: ModelConfig, i: int) -> dict:
    d, blk = cfg.embedding_length, f"blk.{i}"
    # gpt-oss names its second norm post_attention_norm; it sits where the others' ffn_norm does.
    ffn_norm = "post_attention_norm" if cfg.arch == "gpt-oss" else "ffn_norm"
    return ({f"{blk}.attn_norm.weight": (d,)} | _attention(cfg, i)
            | {f"{blk}.{ffn_norm}.weight": (d,)} | _feed_forward(cfg, i))


def expected_tensors(cfg: ModelConfig) -> dict[str, tuple]:
    """Every tensor a file of `cfg` must hold, name -> shape (GGUF order); the synthetic
    generator writes them in this order."""
    d = cfg.embedding_length
    tensors = {"token_embd.weight": (d, cfg.vocab_size)}
    for i in range(cfg.block_count):
        tensors |= _block(cfg, i)
    tensors["output_norm.weight"] = (d,)
    if not cfg.tied_output or cfg.arch == "gpt-oss":  # llama.cpp requires gpt-oss's output
        tensors["output.weight"] = (d, cfg.vocab_size)
    return tensors


def optional_tensors(cfg: ModelConfig) -> dict[str, tuple]:
    """Tensors a file may hold or omit: Phi-3's LongRoPE frequency factors (128k variants)."""
    if cfg.arch != "phi3":
        return {}
    half = (cfg.rope_dimension_count // 2,)
    return {"rope_factors_long.weight": half, "rope_factors_short.weight": half}


def check_tensors(cfg: ModelConfig, shapes: dict[str, tuple]) -> None:
    """ModelLoadError naming the first tensor that is missing, unexpected or mis-shaped."""
    expected = expected_tensors(cfg)
    allowed = expected | optional_tensors(cfg)
    for name, shape in expected.items():
        if name not in shapes:
            raise ModelLoadError(f"{cfg.arch} model lacks tensor {name} (shape {list(shape)})")
    for name, shape in shapes.items():
        if name not in allowed:
            raise ModelLoadError(f"unexpected tensor {name} for a {cfg.arch} model "
                                 f"of {cfg.block_count} blocks")
        if tuple(shape) != allowed[name]:
            raise ModelLoadError(f"tensor {name} has shape {list(shape)}, "
                                 f"expected {list(allowed[name])} for {cfg.arch}")
    factors = [n for n in optional_tensors(cfg) if n in shapes]
    if factors and len(factors) != len(optional_tensors(cfg)):
        raise ModelLoadError(f"{factors[0]} is present without its pair")


def describe(gguf_file) -> ModelConfig:
    """The config of an opened GGUF file (orcd.gguf.open), after checking its tensor map."""
    shapes = {name: tuple(int(n) for n in t.shape) for name, t in gguf_file.tensors.items()}
    cfg = config_from_metadata(gguf_file.metadata, tensor_names=shapes)
    check_tensors(cfg, shapes)
    return cfg
