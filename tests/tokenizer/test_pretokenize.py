"""PreTokenizer.pieces resumes the split of a text that extends the last long one it split (a
chat client resending its conversation): the same pieces as a split of the whole text, empty
ones aside, for every pre-tokenizer, whatever the last text ends with and the new text goes on
with (space runs, newlines, contractions, digits, other scripts)."""
from __future__ import annotations

import random

import pytest

from orcd.tokenizer.pretokenize import RECENT_TEXTS, REGEXES, RESUME_MIN_CHARS, PreTokenizer

EDGES = ["", " ", "  ", "   ", "\n", "\n\n", " \n", "\r\n", "\t", "\u00a0", "\u2028", "'s", "'S",
         "'ll", "'", "x'", "123", "4", "1,000", "é", "Ünï", "ß", "!!", "?\n", "...", "—", "😀",
         "中文", "٣٤", "a", "A", "word", " word", "Word.", "\nUser:", " Archivist:", "<tag>"]


def whole(pre: str, text: str) -> list[str]:
    return [p for p in PreTokenizer(pre).pieces(text) if p]  # a fresh one: no earlier text


def extension(rng: random.Random, corpus: list[str]) -> str:
    parts = [rng.choice(EDGES) for _ in range(rng.randrange(1, 5))]
    if rng.random() < 0.5:
        snippet = rng.choice(corpus)
        start = rng.randrange(len(snippet) + 1)
        parts.insert(rng.randrange(len(parts) + 1), snippet[start:start + rng.randrange(1, 40)])
    return "".join(parts)


@pytest.mark.parametrize("pre", sorted(REGEXES))
def test_a_resumed_split_equals_the_whole_split(pre, corpus):
    rng = random.Random(pre)
    base = " ".join(corpus)
    while len(base) < RESUME_MIN_CHARS:
        base += " " + base
    resumed = 0
    for trial in range(120):
        warm = PreTokenizer(pre)
        text = base[:rng.randrange(RESUME_MIN_CHARS, len(base) + 1)] + rng.choice(EDGES)
        warm.pieces(text)
        for _ in range(3):  # each turn extends the last
            text += extension(rng, corpus)
            resumed += warm._resume(text) is not None
            assert [p for p in warm.pieces(text) if p] == whole(pre, text), (trial, text[-80:])
    assert resumed > 300  # nearly every turn resumed


def test_a_text_that_does_not_extend_the_last_is_split_whole():
    pre = PreTokenizer("qwen2")
    first = "word " * (RESUME_MIN_CHARS // 5 + 1)
    pre.pieces(first)
    assert pre._resume(first + "more") is not None
    assert pre._resume("other " + first) is None
    assert pre._resume(first[:-10]) is None
    short = PreTokenizer("qwen2")
    short.pieces("word " * 10)
    assert short._resume("word " * 10 + "more") is None  # short texts are not remembered


def test_recent_long_texts_are_split_once(corpus):
    """A chat prompt's fragments between special tokens are split apart: a long one seen in an
    earlier turn (the system prompt, an old message) is taken from the remembered ones."""
    pre = PreTokenizer("qwen2")
    system = " ".join(corpus)[:2 * RESUME_MIN_CHARS]
    message = "word " * (RESUME_MIN_CHARS // 5 + 1)
    first = pre.pieces(system)
    pre.pieces(message)
    assert pre.pieces(system) is first  # not split again
    assert [p for p in first if p] == whole("qwen2", system)
    for i in range(RECENT_TEXTS):
        pre.pieces(message + str(i))
    assert pre.pieces(system) is not first  # forgotten after RECENT_TEXTS others
    assert len(pre._recent) <= RECENT_TEXTS
