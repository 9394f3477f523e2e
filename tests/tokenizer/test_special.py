"""SpecialSplitter cuts text at special-token texts; a text that holds none of their first
characters is not searched with the pattern (SpecialSplitter._starts). The cut is the pattern's
either way: real vocabularies and made-up special sets (several first characters, more than
MAX_SPECIAL_STARTS of them, rstrip tokens), texts with and without those characters. And
well_formed leaves ASCII text as it is without encoding it."""
from __future__ import annotations

import random

import pytest

import orcd.tokenizer
from orcd.tokenizer.base import MAX_SPECIAL_STARTS, SpecialSplitter, well_formed
from orcd.tokenizer.bpe import special_texts

VOCABS = ["qwen2", "phi-3", "llama-bpe", "gpt-2", "llama-spm"]
MADE_UP = {
    "one start": ({"<|a|>": 1, "<b>": 2}, {"<u>": 3}),
    "two starts": ({"[INST]": 1, "[/INST]": 2, "<s>": 3}, {"<<SYS>>": 4}),
    "many starts": ({f"{c}x{c}": i for i, c in enumerate("<[{(|#")}, {}),
    "user only": ({}, {"<tool>": 5, "@@": 6}),
}


def pattern_split(splitter: SpecialSplitter, text: str, parse_special: bool) -> list:
    """The split with no look at first characters: the pattern over every text."""
    plain = SpecialSplitter.__new__(SpecialSplitter)
    plain.__dict__.update(splitter.__dict__, _all_starts=None, _user_starts=None)
    return plain.split(text, parse_special)


def texts(rng: random.Random, specials: list[str], corpus: list[str]) -> list[str]:
    out = ["", " ", "\n", "plain text", "a < b and c > d", "[x]", "<", "<|", "|>"]
    for _ in range(200):
        parts = [rng.choice(corpus)[:rng.randrange(1, 200)] for _ in range(rng.randrange(1, 4))]
        if specials and rng.random() < 0.5:
            special = rng.choice(specials)
            cut = rng.choice([special, special[:-1], special[1:]])  # whole, or a part of one
            parts.insert(rng.randrange(len(parts) + 1), cut)
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(["<", "[", " \n ", "@", "|"]))
        out.append("".join(parts))
    return out


def check(splitter: SpecialSplitter, specials: list[str], corpus: list[str], seed: str) -> None:
    rng = random.Random(seed)
    for text in texts(rng, specials, corpus):
        for parse_special in (True, False):
            expected = pattern_split(splitter, text, parse_special)
            assert splitter.split(text, parse_special) == expected, text


@pytest.mark.parametrize("name", VOCABS)
def test_real_vocabularies_cut_as_their_pattern(name, vocab_dir, corpus):
    vocab = orcd.tokenizer.load_vocab(vocab_dir / f"ggml-vocab-{name}.gguf")
    control, user = special_texts(vocab)
    splitter = SpecialSplitter(control, user, vocab.rstrip_ids)
    check(splitter, sorted(control) + sorted(user), corpus, name)


@pytest.mark.parametrize("name", sorted(MADE_UP))
def test_made_up_special_sets_cut_as_their_pattern(name, corpus):
    control, user = MADE_UP[name]
    for rstrip in (frozenset(), frozenset([*control.values(), *user.values()])):
        check(SpecialSplitter(control, user, rstrip), [*control, *user], corpus, name)


def test_first_characters_are_looked_at_only_when_they_are_few():
    assert SpecialSplitter._starts({"<a>": 1, "<b>": 2}) == ("<",)
    assert SpecialSplitter._starts({f"{c}x": i for i, c in enumerate("<[{(|#")}) is None
    assert len("<[{(|#") > MAX_SPECIAL_STARTS
    assert SpecialSplitter._starts({"": 1, "<a>": 2}) is None  # an empty text: the pattern decides


def test_well_formed_ascii_is_the_text_itself(corpus):
    rng = random.Random(3)
    for text in corpus + ["abc", "", "\x00\x7f", "é", "a\ud800b", "\udfff"]:
        expected = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
        assert well_formed(text) == expected
    ascii_text = "".join(chr(rng.randrange(128)) for _ in range(5000))
    assert well_formed(ascii_text) is ascii_text
