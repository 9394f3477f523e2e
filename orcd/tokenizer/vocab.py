"""The tokenizer as a GGUF file stores it: `tokenizer.ggml.*` and `tokenizer.chat_template`.

Token types are llama.cpp's (gguf.TokenType): 1 normal, 2 unknown, 3 control,
4 user-defined, 5 unused, 6 byte.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orcd.errors import ModelLoadError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Texts llama.cpp treats as end of generation when the vocabulary holds them, making them
# control tokens whatever their stored type (llama-vocab.cpp, special_eog_ids).
EOG_TEXTS = frozenset({
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~["})
# GPT-OSS harmony structure tokens llama.cpp always renders and always matches.
HARMONY_RENDERED = ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")


@dataclass(frozen=True)
class GgufVocab:
    model: str                  # tokenizer.ggml.model: "gpt2" (byte BPE) | "llama" (SentencePiece)
    pre: str                    # tokenizer.ggml.pre ("default" when absent)
    tokens: list[str]
    token_type: np.ndarray      # int32, one per token
    scores: np.ndarray | None   # float32, SentencePiece merge priorities
    merges: list[str]           # "left right", rank order
    bos_id: int | None
    eos_id: int | None
    eot_id: int | None
    eom_id: int | None
    unknown_id: int | None
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    chat_template: str | None
    name: str
    eog_ids: frozenset[int]
    rstrip_ids: frozenset[int]  # whitespace after these in the text is dropped (Phi-3)

    @property
    def special_ids(self) -> set[int]:
        """Tokens that decode to nothing when special tokens are skipped (llama.cpp's
        attr_special: control and unknown)."""
        return set(np.isin(self.token_type, (CONTROL, UNKNOWN)).nonzero()[0].tolist())

    @property
    def break_ids(self) -> set[int]:
        """Tokens matched in the text before it is tokenized: special and user-defined."""
        kinds = (CONTROL, UNKNOWN, USER_DEFINED)
        return set(np.isin(self.token_type, kinds).nonzero()[0].tolist())


def _token_id(meta: dict, key: str, n_tokens: int) -> int | None:
    value = meta.get(f"tokenizer.ggml.{key}")
    if value is None:
        return None
    value = int(value)
    return value if 0 <= value < n_tokens else None


def vocab_from_metadata(meta: dict, where: str = "GGUF") -> GgufVocab:
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if model is None or tokens is None:
        raise ModelLoadError(f"{where}: no tokenizer (tokenizer.ggml.model/tokens missing); "
                             "pass a tokenizer.json with --tokenizer-json")
    n = len(tokens)
    token_type = meta.get("tokenizer.ggml.token_type")
    token_type = (np.full(n, NORMAL, np.int32) if token_type is None
                  else np.asarray(token_type, dtype=np.int32))
    scores = meta.get("tokenizer.ggml.scores")
    if len(token_type) != n or (scores is not None and len(scores) != n):
        raise ModelLoadError(f"{where}: tokenizer.ggml.token_type/scores do not have one "
                             f"entry per token ({n} tokens)")
    spm = model == "llama"
    name = str(meta.get("general.name", ""))
    token_type, eog, rstrip = llama_cpp_attributes(list(tokens), token_type.copy(), name)
    # Defaults as llama.cpp sets them per tokenizer kind, before the file's own keys.
    add_bos = spm or meta.get("tokenizer.ggml.pre") in ("llama-bpe", "llama3", "llama-v3")
    return GgufVocab(
        model=model, pre=meta.get("tokenizer.ggml.pre") or "default", tokens=list(tokens),
        token_type=token_type,
        scores=None if scores is None else np.asarray(scores, dtype=np.float32),
        merges=list(meta.get("tokenizer.ggml.merges") or []),
        bos_id=_token_id(meta, "bos_token_id", n), eos_id=_token_id(meta, "eos_token_id", n),
        eot_id=_token_id(meta, "eot_token_id", n), eom_id=_token_id(meta, "eom_token_id", n),
        unknown_id=_token_id(meta, "unknown_token_id", n),
        add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", add_bos)),
        add_eos=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        add_space_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", spm)),
        chat_template=meta.get("tokenizer.chat_template"),
        name=name, eog_ids=eog, rstrip_ids=rstrip,
    )


def llama_cpp_attributes(tokens: list[str], token_type: np.ndarray, name: str):
    """Token types as llama.cpp corrects them at load, the end-of-generation texts present,
    and the tokens that strip whitespace after them. Changes token_type in place."""
    ids = {text: i for i, text in enumerate(tokens)}
    eog = {ids[t] for t in EOG_TEXTS if t in ids}
    token_type[list(eog)] = CONTROL
    for text in HARMONY_RENDERED:
        if text in ids:
            token_type[ids[text]] = USER_DEFINED
    # harmony ends a message, not the turn, with <|end|>
    if "<|return|>" in ids and "<|call|>" in ids and "<|end|>" in ids:
        eog.discard(ids["<|end|>"])
        token_type[ids["<|end|>"]] = USER_DEFINED
    rstrip = set()
    if "phi-3" in name.lower() or "phi3" in name.lower():
        rstrip = set(np.isin(token_type, (CONTROL, UNKNOWN, USER_DEFINED)).nonzero()[0].tolist())
        rstrip |= {ids["</s>"]} if "</s>" in ids else set()
        rstrip -= {ids[t] for t in ("<unk>", "<s>", "<|endoftext|>") if t in ids}
    return token_type, frozenset(eog), frozenset(rstrip)


def eot_ids(vocab: GgufVocab) -> set[int]:
    """Every id that ends a generation, as llama.cpp decides (special_eog_ids): eos, eot,
    eom and the known end-of-turn texts (except harmony's <|end|>)."""
    return {i for i in (vocab.eos_id, vocab.eot_id, vocab.eom_id) if i is not None} | vocab.eog_ids
