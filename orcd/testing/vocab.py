"""Tokenizer metadata for synthetic models: a small BPE trained on orcd.testing.corpus,
laid out like each target's real vocabulary (special tokens at their real ids in the real
preset), byte-level "gpt2" for llama/qwen2/gpt-oss and SentencePiece "llama" for phi3."""
from __future__ import annotations

import collections
import dataclasses
import functools
import re

from gguf import TokenType

from orcd.testing.corpus import TEXT

MERGES = 300
# GPT-2's pre-tokenizer shape, close enough for training: words with their leading space,
# digit runs, punctuation runs, whitespace.
_WORDS = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+")

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
PHI3_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>' + '\\n' + "
                 "message['content'] + '<|end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}")
HARMONY = ("{% for message in messages %}{{ '<|start|>' + message['role'] + '<|message|>' + "
           "message['content'] + '<|end|>' }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|start|>assistant' }}{% endif %}")


@dataclasses.dataclass
class Vocab:
    tokens: list[str]
    token_type: list[int]
    merges: list[str]
    scores: list[float]
    metadata: dict  # the other tokenizer.* keys


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def train_merges(words: collections.Counter, count: int) -> list[tuple[str, str]]:
    """Classic BPE: merge the most frequent adjacent pair, ties broken by the pair itself."""
    seqs = {tuple(w): n for w, n in words.items()}
    merges = []
    for _ in range(count):
        pairs = collections.Counter()
        for seq, n in seqs.items():
            for pair in zip(seq, seq[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        seqs = {_merge(seq, best): n for seq, n in seqs.items()}
    return merges


def _merge(seq: tuple, pair: tuple) -> tuple:
    out, i = [], 0
    while i < len(seq):
        if seq[i:i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return tuple(out)


@functools.cache
def byte_level_merges() -> tuple:
    b2u = bytes_to_unicode()
    words = collections.Counter("".join(b2u[b] for b in w.encode()) for w in _WORDS.findall(TEXT))
    return tuple(train_merges(words, MERGES))


@functools.cache
def sentencepiece_merges() -> tuple:
    words = collections.Counter("▁" + w for w in TEXT.split())
    return tuple(train_merges(words, MERGES))


def _fill(tokens: list, types: list, scores: list, upto: int, name: str) -> None:
    while len(tokens) < upto:
        tokens.append(name.format(len(tokens)))
        types.append(TokenType.UNUSED)
        scores.append(-1e9)


def byte_level(vocab_size: int, specials: list[str], special_base: int | None, pre: str,
               leading: list[str] = ()) -> Vocab:
    """`leading` specials take ids 0.. (SmolLM); `specials` start at `special_base`
    (their real id in the real preset, right after the trained tokens when None)."""
    merges = byte_level_merges()
    tokens = [*leading, *bytes_to_unicode().values(), *(a + b for a, b in merges)]
    types = [TokenType.CONTROL] * len(leading) + [TokenType.NORMAL] * (len(tokens) - len(leading))
    scores = [0.0] * len(tokens)
    _fill(tokens, types, scores, special_base or len(tokens), "[PAD{}]")
    tokens += specials
    types += [TokenType.CONTROL] * len(specials)
    scores += [0.0] * len(specials)
    _fill(tokens, types, scores, vocab_size or len(tokens), "[PAD{}]")
    merge_strings = [f"{a} {b}" for a, b in merges]
    return Vocab(tokens, types, merge_strings, [],
                 {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre})


PHI3_SPECIALS = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                 "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
                 "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]


def sentencepiece(vocab_size: int, special_base: int | None) -> Vocab:
    """Phi-3's layout: <unk> <s> </s>, the 256 byte-fallback pieces, scored pieces, then the
    chat specials from id 32000 in the real preset."""
    merges = sentencepiece_merges()
    chars = sorted({c for w in TEXT.split() for c in "▁" + w})
    pieces = chars + [a + b for a, b in merges]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = ([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
             + [TokenType.NORMAL] * len(pieces))
    # A merged piece outranks the pieces it joins; SentencePiece merges by highest score.
    scores = [0.0] * 259 + [-1000.0 - i for i in range(len(chars))] + [-float(i) for i in range(len(merges))]
    _fill(tokens, types, scores, special_base or len(tokens), "<pad{}>")
    tokens += PHI3_SPECIALS
    types += [TokenType.CONTROL] * len(PHI3_SPECIALS)
    scores += [0.0] * len(PHI3_SPECIALS)
    _fill(tokens, types, scores, vocab_size or len(tokens), "<|placeholder_{}|>")
    return Vocab(tokens, types, [], scores,
                 {"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default"})
