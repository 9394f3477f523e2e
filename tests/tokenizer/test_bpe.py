"""gguf-bpe's cache of the ids of pre-tokenizer pieces (orcd/tokenizer/bpe.py): a text
encoded with pieces already seen, in this text or in others, gives the ids of a cold
encoding and of the `tokenizers` library."""
from __future__ import annotations

import pytest

import orcd.tokenizer
from orcd.bench.server import SYSTEM_PROMPT, TURN_QUESTIONS
from orcd.tokenizer import bpe


@pytest.fixture(scope="module")
def smollm2_pair(smollm2_path, hf_oracle):
    oracle = hf_oracle(smollm2_path)
    oracle.encode_special_tokens = True  # as orcd's default parse_special=False
    return orcd.tokenizer.load(smollm2_path), oracle


def test_smollm2_splits_in_stages(smollm2_pair):
    """The cache is only used by a pre-tokenizer of several regexes (SmolLM2: digits first)."""
    assert smollm2_pair[0]._pretokenize.staged


def test_a_resent_conversation_gives_the_ids_of_the_tokenizers_library(smollm2_pair):
    """The bench's prefix-cache conversation, each turn encoded whole as a chat client sends
    it: the pieces of the earlier turns come from the cache."""
    tokenizer, oracle = smollm2_pair
    conversation = SYSTEM_PROMPT
    for question in TURN_QUESTIONS[:8]:
        conversation += f"\nUser: {question}\nArchivist: Record 12 says the mill was rebuilt in 1884."
        assert tokenizer.encode(conversation, add_special=False) == oracle.encode(conversation).ids


def test_pieces_seen_elsewhere_change_no_id(smollm2_path, corpus, monkeypatch):
    """Every corpus string encoded after all the others, from a cache cleared whenever it
    fills, gives the ids of an encoding that caches nothing."""
    chars = bpe.PIECE_CACHE_CHARS
    monkeypatch.setattr(bpe, "PIECE_CACHE_CHARS", -1)
    cold = orcd.tokenizer.load(smollm2_path)
    expected = [cold.encode(text, parse_special=True) for text in corpus]
    assert not cold._piece_ids
    monkeypatch.setattr(bpe, "PIECE_CACHE_CHARS", chars)
    monkeypatch.setattr(bpe, "PIECE_CACHE_ENTRIES", 64)
    warm = orcd.tokenizer.load(smollm2_path)
    for _ in range(2):
        for text, ids in zip(corpus, expected):
            assert warm.encode(text, parse_special=True) == ids, text[:60]
    assert 0 < len(warm._piece_ids) <= 64
