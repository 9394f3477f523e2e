"""Which GGML type each tensor of a synthetic model gets under a quant mix.

Q4_K_M follows llama.cpp's llama_tensor_get_type (src/llama-quant.cpp); the legacy 4/5-bit
mixes keep the output matrix in Q8_0, as SmolLM2's Q4_1 file does.
"""
from __future__ import annotations

from gguf import GGMLQuantizationType as T
from gguf import LlamaFileType

MIXES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M", "MXFP4")
FILE_TYPE = {"F32": LlamaFileType.ALL_F32, "F16": LlamaFileType.MOSTLY_F16,
             "BF16": LlamaFileType.MOSTLY_BF16, "Q8_0": LlamaFileType.MOSTLY_Q8_0,
             "Q4_0": LlamaFileType.MOSTLY_Q4_0, "Q4_1": LlamaFileType.MOSTLY_Q4_1,
             "Q5_0": LlamaFileType.MOSTLY_Q5_0, "Q5_1": LlamaFileType.MOSTLY_Q5_1,
             "Q4_K_M": LlamaFileType.MOSTLY_Q4_K_M, "MXFP4": LlamaFileType.MOSTLY_MXFP4_MOE}
QK_K = 256
# A K-quant needs rows that are whole super-blocks of 256; llama.cpp falls back to these.
K_FALLBACK = {T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}


def is_float_tensor(name: str, shape: tuple) -> bool:
    """Norms, biases, attention sinks and the MoE router stay F32 in every mix (llama.cpp
    quantizes only 2-D+ `.weight` tensors and never ffn_gate_inp)."""
    return len(shape) < 2 or not name.endswith(".weight") or "ffn_gate_inp" in name


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's choice of the layers that get more bits: the first and last eighth and
    every third layer between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _q4_k_m(name: str, layer: int, block_count: int, tied_output: bool) -> T:
    if name == "output.weight" or (tied_output and name == "token_embd.weight"):
        return T.Q6_K
    if "attn_qkv" in name:
        return T.Q5_K
    if ("attn_v" in name or "ffn_down" in name) and use_more_bits(layer, block_count):
        return T.Q6_K
    return T.Q4_K


def tensor_type(mix: str, name: str, shape: tuple, block_count: int, tied_output: bool) -> T:
    """The type of tensor `name` (GGUF-order `shape`) under `mix`. Layers are written in
    order, so a block's index is llama.cpp's per-kind tensor counter."""
    if mix not in MIXES:
        raise ValueError(f"unknown quant mix {mix!r}; one of {', '.join(MIXES)}")
    if is_float_tensor(name, shape) or mix == "F32":
        return T.F32
    if mix in ("F16", "BF16", "Q8_0"):
        return T[mix]
    is_output = name == "output.weight" or (tied_output and name == "token_embd.weight")
    if mix == "MXFP4":
        return T.MXFP4 if "_exps" in name else T.Q8_0
    if mix != "Q4_K_M":
        return T.Q8_0 if is_output else T[mix]
    layer = int(name.split(".")[1]) if name.startswith("blk.") else 0
    chosen = _q4_k_m(name, layer, block_count, tied_output)
    return K_FALLBACK[chosen] if shape[0] % QK_K else chosen
