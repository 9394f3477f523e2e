"""Tokenizers: text -> token ids -> text, from the GGUF's own vocabulary or a tokenizer.json.

    tok = orcd.tokenizer.load("model.gguf")
    tok.encode("Hello", parse_special=True); tok.decode(ids); tok.stream_decoder().feed(id)

Kinds: "gguf-bpe" (byte-level BPE, bpe.py with merges in _bpe.pyx), "gguf-spm"
(SentencePiece, spm.py with merges in _spm.pyx), "hf-json" (a tokenizer.json through
`tokenizers`, hf.py).
"""
from __future__ import annotations

from pathlib import Path

import orcd.gguf
from orcd.errors import ModelLoadError
from orcd.tokenizer.base import Tokenizer
from orcd.tokenizer.vocab import GgufVocab, vocab_from_metadata

__all__ = ["Tokenizer", "load", "load_vocab"]


def load_vocab(gguf_path) -> GgufVocab | None:
    """The GGUF's tokenizer; None if it stores none."""
    with orcd.gguf.open(str(gguf_path)) as f:
        meta = f.metadata
        if "tokenizer.ggml.model" not in meta:
            return None
        return vocab_from_metadata(meta, str(gguf_path))


def load(gguf_path, tokenizer_json=None) -> Tokenizer:
    """The model's tokenizer: tokenizer_json if given, else a tokenizer.json beside the
    model file, else the GGUF's own vocabulary."""
    vocab = load_vocab(gguf_path)
    beside = Path(gguf_path).with_name("tokenizer.json")
    if tokenizer_json is None and beside.is_file():
        tokenizer_json = beside
    if tokenizer_json is not None:
        from orcd.tokenizer.hf import HfJsonTokenizer
        return HfJsonTokenizer(tokenizer_json, vocab)
    if vocab is None:
        raise ModelLoadError(f"{gguf_path}: the GGUF stores no tokenizer "
                             "(tokenizer.ggml.model); pass one with --tokenizer-json")
    if vocab.model == "gpt2":
        from orcd.tokenizer.bpe import GgufBpeTokenizer
        return GgufBpeTokenizer(vocab)
    if vocab.model == "llama":
        from orcd.tokenizer.spm import GgufSpmTokenizer
        return GgufSpmTokenizer(vocab)
    raise ModelLoadError(f"{gguf_path}: tokenizer.ggml.model={vocab.model!r} is not supported; "
                         "supported: gpt2 (byte-level BPE), llama (SentencePiece); or pass "
                         "a tokenizer.json with --tokenizer-json")
