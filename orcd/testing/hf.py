"""Tiny random Hugging Face models written to GGUF the way llama.cpp's converter writes them
(convert_hf_to_gguf.py): the independent oracle for the NumPy reference forward passes. The
files carry the synthetic models' vocabulary, so llama.cpp loads them too.

    model = tiny_model("qwen2", seed=0)          # transformers Qwen2ForCausalLM, float32
    write_gguf(model, path, "F32")               # or "F16"
"""
from __future__ import annotations

import gguf
import numpy as np

from orcd.testing.presets import vocabulary
from orcd.testing.synth import add_vocab

ARCH_CLASSES = {"llama": ("LlamaConfig", "LlamaForCausalLM"),
                "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
                "phi3": ("Phi3Config", "Phi3ForCausalLM")}

TINY = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-5, rope_theta=10000.0)


def tiny_model(arch: str, seed: int = 0, **overrides):
    """A randomly initialised transformers model of `arch`, eval mode, float32. Weights are
    drawn wider than the library's init (std 0.02 leaves logits nearly flat)."""
    import torch
    import transformers

    config_cls, model_cls = (getattr(transformers, n) for n in ARCH_CLASSES[arch])
    params = TINY | {"vocab_size": len(vocabulary(arch, None, False).tokens),
                     "tie_word_embeddings": arch != "phi3"} | overrides
    if arch == "phi3":
        params.setdefault("pad_token_id", 0)
    config = config_cls(**params)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model


def permute_qk(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: reorder each head's Q/K rows from rotate-half pairs
    (i, i+d/2) to interleaved pairs (2i, 2i+1), for the NORM rope of the llama arch."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(model, arch: str) -> dict[str, np.ndarray]:
    """GGUF name -> float32 array (NumPy order) for a transformers model's state dict."""
    c = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {"token_embd.weight": sd["model.embed_tokens.weight"]}
    for i in range(c.num_hidden_layers):
        hf, blk = f"model.layers.{i}", f"blk.{i}"
        out[f"{blk}.attn_norm.weight"] = sd[f"{hf}.input_layernorm.weight"]
        if arch == "phi3":
            out[f"{blk}.attn_qkv.weight"] = sd[f"{hf}.self_attn.qkv_proj.weight"]
        else:
            q, k = sd[f"{hf}.self_attn.q_proj.weight"], sd[f"{hf}.self_attn.k_proj.weight"]
            if arch == "llama":
                q, k = permute_qk(q, c.num_attention_heads), permute_qk(k, c.num_key_value_heads)
            out[f"{blk}.attn_q.weight"], out[f"{blk}.attn_k.weight"] = q, k
            out[f"{blk}.attn_v.weight"] = sd[f"{hf}.self_attn.v_proj.weight"]
        if arch == "qwen2":
            for x in "qkv":
                out[f"{blk}.attn_{x}.bias"] = sd[f"{hf}.self_attn.{x}_proj.bias"]
        out[f"{blk}.attn_output.weight"] = sd[f"{hf}.self_attn.o_proj.weight"]
        out[f"{blk}.ffn_norm.weight"] = sd[f"{hf}.post_attention_layernorm.weight"]
        if arch == "phi3":
            out[f"{blk}.ffn_up.weight"] = sd[f"{hf}.mlp.gate_up_proj.weight"]
        else:
            out[f"{blk}.ffn_gate.weight"] = sd[f"{hf}.mlp.gate_proj.weight"]
            out[f"{blk}.ffn_up.weight"] = sd[f"{hf}.mlp.up_proj.weight"]
        out[f"{blk}.ffn_down.weight"] = sd[f"{hf}.mlp.down_proj.weight"]
    out["output_norm.weight"] = sd["model.norm.weight"]
    if not c.tie_word_embeddings:
        out["output.weight"] = sd["lm_head.weight"]
    return out


def _rope_scaling(config) -> dict | None:
    scaling = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None) or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    return scaling if kind == "longrope" else None


def gguf_metadata(model, arch: str) -> dict:
    c = model.config
    head_dim = c.hidden_size // c.num_attention_heads
    theta = getattr(c, "rope_theta", None) or c.rope_parameters["rope_theta"]
    md = {"general.architecture": arch, "general.name": f"tiny-random-{arch}",
          f"{arch}.vocab_size": c.vocab_size,
          f"{arch}.block_count": c.num_hidden_layers,
          f"{arch}.context_length": c.max_position_embeddings,
          f"{arch}.embedding_length": c.hidden_size,
          f"{arch}.feed_forward_length": c.intermediate_size,
          f"{arch}.attention.head_count": c.num_attention_heads,
          f"{arch}.attention.head_count_kv": c.num_key_value_heads,
          f"{arch}.attention.layer_norm_rms_epsilon": float(c.rms_norm_eps),
          f"{arch}.rope.freq_base": float(theta),
          f"{arch}.rope.dimension_count": int(head_dim * getattr(c, "partial_rotary_factor", 1.0))}
    scaling = _rope_scaling(c)
    if scaling:
        original = c.original_max_position_embeddings
        scale = c.max_position_embeddings / original
        md |= {f"{arch}.rope.scaling.type": "longrope",
               f"{arch}.rope.scaling.original_context_length": original,
               # Phi3LongRoPEScaledRotaryEmbedding's attention factor, as the converter writes it
               f"{arch}.rope.scaling.attn_factor":
                   float(np.sqrt(1 + np.log(scale) / np.log(original))) if scale > 1 else 1.0}
    return md


def write_gguf(model, path, ftype: str = "F32") -> str:
    """Write `model` (a tiny_model) to a GGUF file at `path`; matrices in `ftype` (F32 or
    F16), norms, biases and rope factors in F32 as llama.cpp keeps them."""
    arch = model.config.model_type
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in gguf_metadata(model, arch).items():
        if key == "general.architecture":
            continue
        if isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        else:
            writer.add_string(key, value)
    add_vocab(writer, vocabulary(arch, model.config.vocab_size, False))
    tensors = gguf_tensors(model, arch)
    scaling = _rope_scaling(model.config)
    if scaling:
        tensors["rope_factors_long.weight"] = np.asarray(scaling["long_factor"], np.float32)
        tensors["rope_factors_short.weight"] = np.asarray(scaling["short_factor"], np.float32)
    for name, value in tensors.items():
        half = ftype == "F16" and value.ndim == 2
        writer.add_tensor(name, value.astype(np.float16 if half else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)
