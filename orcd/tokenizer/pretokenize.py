"""Pre-tokenizers of byte-level BPE vocabularies, by `tokenizer.ggml.pre`.

Each is a sequence of regexes exactly as llama.cpp's llama-vocab.cpp lists them. Each regex
splits every piece left by the one before it into matches and the text between matches
(Hugging Face's Split behaviour "isolated"), so the same list configures `tokenizers`.
Python's `re` has no \\p{L}; the `regex` module does.
"""
from __future__ import annotations

import threading

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


# A text that extends the last one split (a chat client resends its whole conversation each
# turn) keeps that split up to a resume point near its end and has only the rest split: the
# Qwen2 regex took 1.36 ms for a 10,000-character conversation (1.48 ms of a cached turn's
# 5.4 ms on the H200 box). A chat prompt's special tokens cut it into fragments, each split
# apart: the last RECENT_TEXTS long ones are remembered whole. Shorter texts are split whole.
RESUME_MIN_CHARS = 1024
RECENT_TEXTS = 16
RESUME_LOOKBACK = 64  # pieces searched back from the last text's end for a resume point
RESUME_MARGIN = 3  # characters a match's end is decided by (_resume)


class PreTokenizer:
    """Splits text into the chunks BPE merges within: pieces() by the first regex, then
    chunks() of each piece by the others. Results may contain empty strings, which encode to
    nothing."""

    def __init__(self, pre: str):
        self.regexes = regexes_for(pre)
        # A capturing group makes split() return the matches between the gaps.
        self._splitters = [regex.compile(f"({r})").split for r in self.regexes]
        self._last: tuple[str, list[str]] | None = None  # the last long text and its pieces
        self._recent: dict[str, list[str]] = {}  # long texts and their pieces, oldest first
        self._remember = threading.Lock()  # writers; a reader takes a snapshot (one lookup)

    def pieces(self, text: str) -> list[str]:
        """The split by the first regex alone (a list the caller does not change)."""
        known = self._recent.get(text)
        if known is not None:
            return known
        resumed = self._resume(text)
        if resumed is None:
            # It runs over the whole text (32,768 emoji: 13 ms) without the GIL, so the server
            # answers meanwhile.
            pieces = self._splitters[0](text, concurrent=True)
        else:
            head, at = resumed
            pieces = head + self._splitters[0](text[at:], concurrent=True)
        if len(text) >= RESUME_MIN_CHARS:
            with self._remember:
                self._last = (text, pieces)  # one assignment: a reader sees either whole
                self._recent[text] = pieces
                while len(self._recent) > RECENT_TEXTS:
                    del self._recent[next(iter(self._recent))]
        return pieces

    def _resume(self, text: str) -> tuple[list[str], int] | None:
        """(the last text's pieces before position `at`, at) where `text` extends that text
        and its split may resume at `at`, else None. `at` starts a piece at least
        RESUME_MARGIN characters before the last text's end, and the characters on either side
        of it are not both space. The regexes look behind nothing, and past the end of a match
        they look at up to RESUME_MARGIN characters (o200k's contraction after a word: 'll),
        or over a run of space and one character after it; so every match (and every failed
        try) before `at` looked at nothing past the last text, and comes out the same in
        `text`, and the split goes on from `at` as it would from the start of a text.
        (str.isspace() holds for every character the regexes' \\s matches.)"""
        last = self._last
        if last is None or len(text) < RESUME_MIN_CHARS or not text.startswith(last[0]):
            return None
        old, pieces = last
        at = len(old)
        for k in range(len(pieces) - 1, max(len(pieces) - RESUME_LOOKBACK, 0), -1):
            at -= len(pieces[k])  # the start of piece k
            if 0 < at <= len(old) - RESUME_MARGIN and not (old[at].isspace() and old[at - 1].isspace()):
                return pieces[:k], at
        return None

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
