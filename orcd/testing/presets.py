"""Hyper-parameters of the synthetic models (ModelConfig fields) and their vocabularies.

`real` is each target's exact shape (SPEC.md §6); `tiny` keeps its structure (GQA, biases,
fused tensors, experts, sliding window, YaRN) at a few MB.
"""
from __future__ import annotations

from orcd.testing import vocab as v

COMMON = {"rope_scaling_type": None, "rope_scaling_factor": 1.0,
          "rope_scaling_original_context_length": 0, "rope_scaling_attn_factor": 1.0,
          "expert_count": 0, "expert_used_count": 0, "expert_feed_forward_length": 0,
          "sliding_window": 0}
YARN = {"rope_scaling_type": "yarn", "rope_scaling_attn_factor": 1.0}

REAL = {
    "llama": dict(name="SmolLM2 135M Synthetic", block_count=30, context_length=8192,
                  embedding_length=576, feed_forward_length=1536, head_count=9, head_count_kv=3,
                  key_length=64, vocab_size=49152, rms_eps=1e-5, rope_freq_base=100000.0,
                  tied_output=True),
    "qwen2": dict(name="Qwen2.5 0.5B Instruct Synthetic", block_count=24, context_length=32768,
                  embedding_length=896, feed_forward_length=4864, head_count=14, head_count_kv=2,
                  key_length=64, vocab_size=151936, rms_eps=1e-6, rope_freq_base=1000000.0,
                  tied_output=True),
    "phi3": dict(name="Phi 3 Mini 4k Instruct Synthetic", block_count=32, context_length=4096,
                 embedding_length=3072, feed_forward_length=8192, head_count=32, head_count_kv=32,
                 key_length=96, vocab_size=32064, rms_eps=1e-5, rope_freq_base=10000.0,
                 tied_output=False, rope_scaling_original_context_length=4096),
    "gpt-oss": dict(name="GPT OSS 20B Synthetic", block_count=24, context_length=131072,
                    embedding_length=2880, feed_forward_length=2880, head_count=64, head_count_kv=8,
                    key_length=64, vocab_size=201088, rms_eps=1e-5, rope_freq_base=150000.0,
                    tied_output=False, expert_count=32, expert_used_count=4,
                    expert_feed_forward_length=2880, sliding_window=128,
                    **YARN, rope_scaling_factor=32.0, rope_scaling_original_context_length=4096),
}

TINY = {
    "llama": dict(name="SmolLM Tiny Synthetic", block_count=2, context_length=2048,
                  embedding_length=64, feed_forward_length=128, head_count=4, head_count_kv=2,
                  key_length=16, rms_eps=1e-5, rope_freq_base=10000.0, tied_output=True),
    "qwen2": dict(name="Qwen2.5 Tiny Synthetic", block_count=2, context_length=4096,
                  embedding_length=64, feed_forward_length=160, head_count=4, head_count_kv=2,
                  key_length=16, rms_eps=1e-6, rope_freq_base=1000000.0, tied_output=True),
    "phi3": dict(name="Phi 3 Tiny Synthetic", block_count=2, context_length=4096,
                 embedding_length=128, feed_forward_length=256, head_count=4, head_count_kv=4,
                 key_length=32, rms_eps=1e-5, rope_freq_base=10000.0, tied_output=False,
                 rope_scaling_original_context_length=4096),
    "gpt-oss": dict(name="GPT OSS Tiny Synthetic", block_count=2, context_length=2048,
                    embedding_length=64, feed_forward_length=64, head_count=8, head_count_kv=2,
                    key_length=16, rms_eps=1e-5, rope_freq_base=150000.0, tied_output=False,
                    expert_count=4, expert_used_count=2, expert_feed_forward_length=64,
                    sliding_window=8, **YARN, rope_scaling_factor=4.0,
                    rope_scaling_original_context_length=512),
}

HARMONY_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|reserved_200000|>",
                    "<|reserved_200001|>", "<|return|>", "<|constrain|>", "<|reserved_200004|>",
                    "<|channel|>", "<|start|>", "<|end|>", "<|message|>", "<|reserved_200009|>",
                    "<|reserved_200010|>", "<|reserved_200011|>", "<|call|>"]
CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def hyper_parameters(arch: str, preset: str, overrides: dict) -> dict:
    if preset not in ("tiny", "real"):
        raise ValueError(f"unknown preset {preset!r}: tiny or real")
    if arch not in REAL:
        raise ValueError(f"unknown architecture {arch!r}; one of {', '.join(REAL)}")
    params = COMMON | (REAL if preset == "real" else TINY)[arch] | overrides
    params.setdefault("value_length", params["key_length"])
    params.setdefault("rope_dimension_count", params["key_length"])
    return params


def vocabulary(arch: str, vocab_size: int | None, real: bool) -> v.Vocab:
    """The vocabulary with its special ids and chat template; `vocab_size` None: natural size."""
    if arch == "llama":
        vocab = v.byte_level(vocab_size, [], None, "smollm", leading=CHATML_SPECIALS)
        ids = {"bos": 1, "eos": 2, "unknown": 0, "padding": 2}
        extra = {"tokenizer.ggml.add_bos_token": False, "tokenizer.chat_template": v.CHATML}
    elif arch == "qwen2":
        vocab = v.byte_level(vocab_size, CHATML_SPECIALS, 151643 if real else None, "qwen2")
        ids = _ids(vocab, bos="<|endoftext|>", eos="<|im_end|>", padding="<|endoftext|>")
        extra = {"tokenizer.ggml.add_bos_token": False, "tokenizer.chat_template": v.CHATML}
    elif arch == "gpt-oss":
        vocab = v.byte_level(vocab_size, HARMONY_SPECIALS, 199998 if real else None, "gpt-4o")
        ids = _ids(vocab, bos="<|startoftext|>", eos="<|return|>", padding="<|endoftext|>")
        extra = {"tokenizer.ggml.add_bos_token": False, "tokenizer.chat_template": v.HARMONY}
    else:
        vocab = v.sentencepiece(vocab_size, 32000 if real else None)
        ids = _ids(vocab, bos="<s>", eos="<|endoftext|>", unknown="<unk>", padding="<|endoftext|>")
        extra = {"tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
                 "tokenizer.chat_template": v.PHI3_TEMPLATE}
    vocab.metadata |= {f"tokenizer.ggml.{k}_token_id": i for k, i in ids.items()} | extra
    return vocab


def _ids(vocab: v.Vocab, **names: str) -> dict[str, int]:
    return {k: vocab.tokens.index(name) for k, name in names.items()}
