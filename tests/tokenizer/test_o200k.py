"""Our gguf-bpe tokenizer with pre-tokenizer "gpt-4o", on a GGUF built from the real o200k
ranks (orcd.testing.o200k), gives tiktoken's o200k_harmony ids on the conformance corpus."""
from __future__ import annotations

import pytest

import orcd.tokenizer
from orcd.testing import o200k
from orcd.tokenizer.base import well_formed

tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is not installed: pip install tiktoken")

# llama.cpp always matches these harmony tokens, special parsing or not (llama-vocab.cpp makes
# them USER_DEFINED); tiktoken matches what it is allowed to: allow exactly these.
ALWAYS_MATCHED = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", "<|end|>"}
HARMONY_TEXT = ("<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant<|channel|>final"
                "<|message|>4<|return|>")


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    try:
        o200k.tiktoken_file()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return o200k.write_vocab_gguf(tmp_path_factory.mktemp("o200k") / "o200k_harmony.gguf")


@pytest.fixture(scope="module")
def ours(vocab_path):
    return orcd.tokenizer.load(vocab_path)


@pytest.fixture(scope="module")
def harmony(tmp_path_factory, monkeypatch_module):
    """tiktoken's o200k_harmony, reading the same ranks file offline from its cache."""
    cache = tmp_path_factory.mktemp("tiktoken")
    o200k.install_for_tiktoken(cache)
    monkeypatch_module.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return tiktoken.get_encoding("o200k_harmony")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def ordinary(harmony, text: str) -> list[int]:
    """tiktoken's ids without special parsing, but for the tokens llama.cpp always matches."""
    return harmony.encode(well_formed(text), allowed_special=ALWAYS_MATCHED, disallowed_special=())


def test_vocabulary_is_o200k_harmony(ours, harmony):
    assert ours.vocab_size == harmony.n_vocab == o200k.VOCAB_SIZE
    for text in ("<|startoftext|>", "<|return|>", "<|call|>", "<|end|>", "<|reserved_201087|>"):
        expected = [harmony.encode_single_token(text)]
        assert ours.encode(text, add_special=False, parse_special=True) == expected


def test_corpus_ids_equal_tiktoken(ours, harmony, corpus):
    mismatches = []
    for text in corpus:
        mine = ours.encode(text, add_special=False, parse_special=False)
        theirs = ordinary(harmony, text)
        if mine != theirs:
            mismatches.append((text[:60], mine[:12], theirs[:12]))
    assert len(corpus) >= 1000
    assert not mismatches, f"{len(mismatches)}/{len(corpus)} strings differ: {mismatches[:3]}"


def test_corpus_ids_with_special_tokens_equal_tiktoken(ours, harmony, corpus):
    texts = [*corpus, HARMONY_TEXT, HARMONY_TEXT.replace("<|", " <|")]
    wrong = [t[:60] for t in texts
             if ours.encode(t, add_special=False, parse_special=True)
             != harmony.encode(well_formed(t), allowed_special="all")]
    assert not wrong, f"{len(wrong)}/{len(texts)} strings differ: {wrong[:3]}"


def test_decode_equals_tiktoken(ours, harmony, corpus):
    for text in corpus[:200]:
        ids = ordinary(harmony, text)
        assert ours.decode(ids) == harmony.decode(ids)
