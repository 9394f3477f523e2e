"""Pre-tokenizers of byte-level BPE vocabularies, by `tokenizer.ggml.pre`.

Each is a sequence of regexes exactly as llama.cpp's llama-vocab.cpp lists them. Each regex
splits every piece left by the one before it into matches and the text between matches
(Hugging Face's Split behaviour "isolated"), so the same list configures `tokenizers`.
Python's `re` has no \\p{L}; the `regex` module does.
"""
from __future__ import annotations

import regex

from orcd.errors import ModelLoadError

_CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# o200k: the original tokenizer.json regex with llama.cpp's case-exact contractions.
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_GPT4O = (rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?"
          rf"|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTIONS}?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]

REGEXES: dict[str, list[str]] = {
    "default": _DEFAULT,
    "gpt-2": [_GPT2], "phi-2": [_GPT2], "mpt": [_GPT2], "olmo": [_GPT2],
    "llama-bpe": [_LLAMA3], "llama3": [_LLAMA3], "llama-v3": [_LLAMA3],
    "qwen2": [_QWEN2], "deepseek-r1-qwen": [_QWEN2], "stablelm2": [_QWEN2],
    "smollm": [r"\p{N}", _GPT2], "starcoder": [r"\p{N}", _GPT2], "refact": [r"\p{N}", _GPT2],
    "gpt-4o": [_GPT4O], "llama4": [_GPT4O],
}

# llama.cpp takes a word that is itself a token whole, before any merge, for these.
IGNORE_MERGES = frozenset({"llama-bpe", "llama3", "llama-v3"})


def regexes_for(pre: str) -> list[str]:
    try:
        return REGEXES[pre]
    except KeyError:
        raise ModelLoadError(
            f"unknown pre-tokenizer tokenizer.ggml.pre={pre!r}; supported: "
            f"{', '.join(sorted(REGEXES))}; or pass a tokenizer.json (--tokenizer-json)") from None


# Below this many characters a split takes under ~0.1 ms: releasing the GIL, which the regex
# module does around each match, would cost more than it gives (a resumed split's rest of ~150
# characters: 29 -> 26 us a turn).
NOGIL_CHARS = 1024


class PreTokenizer:
    """Splits text into the chunks BPE merges within: pieces() by the first regex, then
    chunks() of each piece by the others. Results may contain empty strings, which encode to
    nothing."""

    def __init__(self, pre: str):
        self.regexes = regexes_for(pre)
        # A capturing group makes split() return the matches between the gaps.
        self._splitters = [regex.compile(f"({r})").split for r in self.regexes]

    def pieces(self, text: str) -> list[str]:
        """The split by the first regex alone. It runs over a long text (32,768 emoji: 13 ms)
        without the GIL, so the server answers meanwhile."""
        return self._splitters[0](text, concurrent=len(text) >= NOGIL_CHARS)

    @property
    def staged(self) -> bool:
        """More than one regex: a piece of the first is cut again by chunks()."""
        return len(self._splitters) > 1

    def chunks(self, piece: str) -> list[str]:
        """A piece of the first regex cut by the others, each splitting what the one before
        left; it depends on the piece alone."""
        chunks = [piece]
        for split in self._splitters[1:]:
            chunks = [chunk for part in chunks if part for chunk in split(part)]
        return chunks
