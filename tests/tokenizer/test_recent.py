"""RecentTexts resumes the encoding of a text that extends the last long one it encoded (a chat
client resending its conversation): the same pieces as a split of the whole text, empty ones
aside, for every pre-tokenizer, whatever the last text ends with and the new text goes on with
(space runs, newlines, contractions, digits, other scripts); and through a whole tokenizer the
same ids as an encoding from scratch, with special tokens inside, edits in the middle and two
threads."""
from __future__ import annotations

import math
import random
import threading

import pytest

import orcd.tokenizer
from orcd.tokenizer import recent
from orcd.tokenizer.bpe import special_texts
from orcd.tokenizer.pretokenize import REGEXES, PreTokenizer
from orcd.tokenizer.recent import RECENT_TEXTS, RESUME_MIN_CHARS, RecentTexts

EDGES = ["", " ", "  ", "   ", "\n", "\n\n", " \n", "\r\n", "\t", "\u00a0", "\u2028", "'s", "'S",
         "'ll", "'", "x'", "123", "4", "1,000", "é", "Ünï", "ß", "!!", "?\n", "...", "—", "😀",
         "中文", "٣٤", "a", "A", "word", " word", "Word.", "\nUser:", " Archivist:", "<tag>"]
BPE_VOCABS = ["qwen2", "llama-bpe", "smollm2"]


def nonempty(pieces: list[str]) -> list[str]:
    return [p for p in pieces if p]


def split_remembered(pre: str) -> RecentTexts:
    """A RecentTexts whose ids are the pieces themselves."""
    return RecentTexts(PreTokenizer(pre).pieces, nonempty)


def whole(pre: str, text: str) -> list[str]:
    return nonempty(PreTokenizer(pre).pieces(text))


def extension(rng: random.Random, corpus: list[str], specials=()) -> str:
    parts = [rng.choice(EDGES) for _ in range(rng.randrange(1, 5))]
    if rng.random() < 0.5:
        snippet = rng.choice(corpus)
        start = rng.randrange(len(snippet) + 1)
        parts.insert(rng.randrange(len(parts) + 1), snippet[start:start + rng.randrange(1, 40)])
    if specials and rng.random() < 0.3:
        special = rng.choice(specials)
        cut = rng.randrange(len(special) + 1)  # a part of one, the rest perhaps in the next turn
        parts.insert(rng.randrange(len(parts) + 1), rng.choice([special, special[:cut], special[cut:]]))
    return "".join(parts)


def long_base(corpus: list[str]) -> str:
    base = " ".join(corpus)
    while len(base) < RESUME_MIN_CHARS:
        base += " " + base
    return base


@pytest.mark.parametrize("pre", sorted(REGEXES))
def test_a_resumed_split_equals_the_whole_split(pre, corpus):
    rng = random.Random(pre)
    base = long_base(corpus)
    resumed = 0
    for trial in range(120):
        warm = split_remembered(pre)
        text = base[:rng.randrange(RESUME_MIN_CHARS, len(base) + 1)] + rng.choice(EDGES)
        warm.encode(text)
        for _ in range(3):  # each turn extends the last
            text += extension(rng, corpus)
            resumed += warm._resume(text) is not None
            assert warm.encode(text) == whole(pre, text), (trial, text[-80:])
    assert resumed > 300  # nearly every turn resumed


def test_a_text_that_does_not_extend_the_last_is_split_whole():
    pre = split_remembered("qwen2")
    first = "word " * (RESUME_MIN_CHARS // 5 + 1)
    pre.encode(first)
    assert pre._resume(first + "more") is not None
    assert pre._resume("other " + first) is None
    assert pre._resume(first[:-10]) is None
    short = split_remembered("qwen2")
    short.encode("word " * 10)
    assert short._resume("word " * 10 + "more") is None  # short texts are not remembered


def test_recent_long_texts_are_split_once(corpus):
    """A chat prompt's fragments between special tokens are encoded apart: a long one seen in an
    earlier turn (the system prompt, an old message) is taken from the remembered ones."""
    pre = split_remembered("qwen2")
    system = " ".join(corpus)[:2 * RESUME_MIN_CHARS]
    message = "word " * (RESUME_MIN_CHARS // 5 + 1)
    first = pre.encode(system)
    pre.encode(message)
    assert pre.encode(system) is first  # not split again
    assert first == whole("qwen2", system)
    for i in range(RECENT_TEXTS):
        pre.encode("other " + message + str(i))
    assert pre.encode(system) is not first  # forgotten after RECENT_TEXTS others
    assert len(pre._recent) <= RECENT_TEXTS


@pytest.fixture(scope="module")
def bpe_tokenizers(request) -> dict:
    """name -> (a gguf-bpe tokenizer, some of its control and user-defined token texts)."""
    loaded = {}
    for name in BPE_VOCABS:
        if name == "smollm2":
            path = request.getfixturevalue("smollm2_path")
        else:
            path = request.getfixturevalue("vocab_dir") / f"ggml-vocab-{name}.gguf"
        control, user = special_texts(orcd.tokenizer.load_vocab(path))
        rng, user = random.Random(name), sorted(user)
        specials = rng.sample(sorted(control), min(len(control), 6)) + rng.sample(user, min(len(user), 2))
        loaded[name] = orcd.tokenizer.load(path), specials
    return loaded


def from_scratch(tok, text: str, parse_special: bool) -> list[int]:
    """The ids with nothing remembered: every text counts as short."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recent, "RESUME_MIN_CHARS", math.inf)
        return tok.encode(text, add_special=True, parse_special=parse_special)


@pytest.mark.parametrize("name", BPE_VOCABS)
def test_a_resent_conversation_encodes_as_from_scratch(name, bpe_tokenizers, corpus):
    """Turns that extend the last text, with special tokens (whole, or cut across two turns);
    now and then the text edited in the middle, cut back, or an earlier turn's sent again."""
    tok, specials = bpe_tokenizers[name]
    rng = random.Random(name)
    base = long_base(corpus)
    for trial in range(25):
        text = base[:rng.randrange(RESUME_MIN_CHARS // 2, 2 * RESUME_MIN_CHARS)]
        sent = []
        for _ in range(8):
            roll = rng.random()
            if roll < 0.1 and sent:
                text = rng.choice(sent)
            elif roll < 0.2:
                at = rng.randrange(len(text))
                text = text[:at] + extension(rng, corpus, specials) + text[at + rng.randrange(3):]
            elif roll < 0.25:
                text = text[:rng.randrange(len(text) // 2, len(text))]
            else:
                text += extension(rng, corpus, specials)
            sent.append(text)
            parse_special = rng.random() < 0.8
            ids = tok.encode(text, add_special=True, parse_special=parse_special)
            assert ids == from_scratch(tok, text, parse_special), (trial, text[-80:])


@pytest.mark.parametrize("name", ["qwen2", "smollm2"])
def test_two_threads_resending_conversations(name, bpe_tokenizers, corpus):
    """The event loop and the engine thread encode at once: each resumes from whichever text was
    last, or encodes whole, and gets the ids of its own text."""
    tok, specials = bpe_tokenizers[name]
    base = long_base(corpus)
    texts = {}

    def converse(seed):
        rng = random.Random(seed)
        text, sent = base[seed:seed + RESUME_MIN_CHARS + 100], []
        for _ in range(150):
            text += extension(rng, corpus, specials)
            sent.append((text, tok.encode(text, add_special=True, parse_special=True)))
        texts[seed] = sent

    threads = [threading.Thread(target=converse, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sent in texts.values():
        for text, ids in sent:
            assert ids == from_scratch(tok, text, True), text[-80:]
