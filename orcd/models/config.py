"""ModelConfig: an architecture's hyper-parameters, read once from GGUF metadata.

Keys are llama.cpp's (`{arch}.block_count`, `{arch}.attention.head_count_kv`, ...) and so are
the defaults it applies when an optional key is absent (llama-model.cpp, load_hparams).
"""
from __future__ import annotations

import dataclasses

from orcd.errors import ModelLoadError

ARCHITECTURES = ("llama", "qwen2", "phi3", "gpt-oss")
# llama.cpp's rope type per architecture: NORM rotates pairs (2i, 2i+1), NEOX pairs (i, i+d/2).
ROPE_NEOX = {"llama": False, "qwen2": True, "phi3": True, "gpt-oss": True}
QKV_BIAS = {"llama": False, "qwen2": True, "phi3": False, "gpt-oss": True}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str
    name: str
    block_count: int
    context_length: int
    embedding_length: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    key_length: int
    value_length: int
    vocab_size: int
    rms_eps: float
    rope_freq_base: float
    rope_dimension_count: int
    rope_neox: bool
    tied_output: bool
    qkv_bias: bool
    rope_scaling_type: str | None = None
    rope_scaling_factor: float = 1.0
    rope_scaling_original_context_length: int = 0
    rope_scaling_attn_factor: float = 1.0
    expert_count: int = 0
    expert_used_count: int = 0
    expert_feed_forward_length: int = 0
    sliding_window: int = 0

    @property
    def head_dim(self) -> int:
        return self.key_length

    @property
    def q_dim(self) -> int:
        return self.head_count * self.key_length

    @property
    def k_dim(self) -> int:
        return self.head_count_kv * self.key_length

    @property
    def v_dim(self) -> int:
        return self.head_count_kv * self.value_length

    @property
    def is_moe(self) -> bool:
        return self.expert_count > 0

    def uses_sliding_window(self, layer: int) -> bool:
        """gpt-oss alternates: even layers see the last `sliding_window` tokens, odd ones all
        (llama.cpp: set_swa_pattern(2))."""
        return self.sliding_window > 0 and layer % 2 == 0


def _get(metadata: dict, key: str, kind, default=None):
    if key not in metadata:
        if default is None:
            raise ModelLoadError(f"GGUF metadata key {key!r} is missing")
        return default
    value = metadata[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ModelLoadError(f"GGUF metadata key {key!r} must be a non-negative integer, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ModelLoadError(f"GGUF metadata key {key!r} must be a number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ModelLoadError(f"GGUF metadata key {key!r} must be a string, got {value!r}")
    return kind(value)


def _vocab_size(metadata: dict, arch: str) -> int:
    if f"{arch}.vocab_size" in metadata:
        return _get(metadata, f"{arch}.vocab_size", int)
    tokens = metadata.get("tokenizer.ggml.tokens")
    if tokens is None:
        raise ModelLoadError(f"GGUF metadata has neither {arch}.vocab_size nor tokenizer.ggml.tokens")
    return len(tokens)


def _rope_scaling(metadata: dict, arch: str) -> dict:
    kind = metadata.get(f"{arch}.rope.scaling.type", "none")
    return {
        "rope_scaling_type": None if kind == "none" else kind,
        "rope_scaling_factor": _get(metadata, f"{arch}.rope.scaling.factor", float, 1.0),
        "rope_scaling_original_context_length":
            _get(metadata, f"{arch}.rope.scaling.original_context_length", int, 0),
        "rope_scaling_attn_factor": _get(metadata, f"{arch}.rope.scaling.attn_factor", float, 1.0),
    }


def _experts(metadata: dict, arch: str) -> dict:
    if arch != "gpt-oss":
        return {}
    return {
        "expert_count": _get(metadata, f"{arch}.expert_count", int),
        "expert_used_count": _get(metadata, f"{arch}.expert_used_count", int),
        "expert_feed_forward_length": _get(metadata, f"{arch}.expert_feed_forward_length", int),
        "sliding_window": _get(metadata, f"{arch}.attention.sliding_window", int),
    }


def _check(cfg: ModelConfig) -> ModelConfig:
    positive = ("block_count", "context_length", "embedding_length", "head_count", "head_count_kv",
                "key_length", "value_length", "vocab_size", "rope_dimension_count")
    for field in positive:
        if getattr(cfg, field) <= 0:
            raise ModelLoadError(f"{cfg.arch}: {field} must be positive, got {getattr(cfg, field)}")
    if cfg.head_count % cfg.head_count_kv:
        raise ModelLoadError(f"{cfg.arch}: head_count {cfg.head_count} is not a multiple of "
                             f"head_count_kv {cfg.head_count_kv}")
    if cfg.rope_dimension_count > cfg.key_length or cfg.rope_dimension_count % 2:
        raise ModelLoadError(f"{cfg.arch}: rope.dimension_count {cfg.rope_dimension_count} must be "
                             f"even and at most key_length {cfg.key_length}")
    if cfg.is_moe and not 0 < cfg.expert_used_count <= cfg.expert_count:
        raise ModelLoadError(f"{cfg.arch}: expert_used_count {cfg.expert_used_count} must be in "
                             f"1..expert_count {cfg.expert_count}")
    return cfg


def config_from_metadata(metadata: dict, tensor_names=None) -> ModelConfig:
    """The config of a GGUF file's metadata; `tensor_names`, when given, decides tied_output
    (no `output.weight`: the logits reuse `token_embd.weight`)."""
    arch = metadata.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ModelLoadError(f"unsupported architecture {arch!r}; orcd serves {', '.join(ARCHITECTURES)}")
    embedding_length = _get(metadata, f"{arch}.embedding_length", int)
    head_count = _get(metadata, f"{arch}.attention.head_count", int)
    if head_count == 0:
        raise ModelLoadError(f"{arch}: attention.head_count must be positive")
    key_length = _get(metadata, f"{arch}.attention.key_length", int, embedding_length // head_count)
    tied = arch in ("llama", "qwen2") if tensor_names is None else "output.weight" not in tensor_names
    cfg = ModelConfig(
        arch=arch,
        name=str(metadata.get("general.name", "")),
        block_count=_get(metadata, f"{arch}.block_count", int),
        context_length=_get(metadata, f"{arch}.context_length", int),
        embedding_length=embedding_length,
        feed_forward_length=_get(metadata, f"{arch}.feed_forward_length", int,
                                 0 if arch == "gpt-oss" else None),
        head_count=head_count,
        head_count_kv=_get(metadata, f"{arch}.attention.head_count_kv", int, head_count),
        key_length=key_length,
        value_length=_get(metadata, f"{arch}.attention.value_length", int, key_length),
        vocab_size=_vocab_size(metadata, arch),
        rms_eps=_get(metadata, f"{arch}.attention.layer_norm_rms_epsilon", float),
        rope_freq_base=_get(metadata, f"{arch}.rope.freq_base", float, 10000.0),
        rope_dimension_count=_get(metadata, f"{arch}.rope.dimension_count", int, key_length),
        rope_neox=ROPE_NEOX[arch],
        tied_output=tied,
        qkv_bias=QKV_BIAS[arch],
        **_rope_scaling(metadata, arch),
        **_experts(metadata, arch),
    )
    return _check(cfg)
