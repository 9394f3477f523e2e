"""Encode throughput on ~10 MB of English and code with the SmolLM2 vocabulary: orcd's
gguf-bpe beside the `tokenizers` library on the same text (run with --benchmark-enable;
compare the two rows of group "encode"). Without benchmarks a 200 kB text is used, and both
must still give the same ids."""
from __future__ import annotations

import random

import pytest

import orcd.tokenizer

FULL_BYTES = 10_000_000
QUICK_BYTES = 200_000


@pytest.fixture(scope="module")
def text(corpus, request) -> str:
    """Corpus strings of English words, code, numbers and whitespace in seeded random order."""
    config = request.config
    enabled = config.getoption("benchmark_enable") or not config.getoption("benchmark_disable")
    size = FULL_BYTES if enabled else QUICK_BYTES
    pool = [s for s in corpus if s.isascii() and 0 < len(s) < 1500]
    rng, parts, total = random.Random(0), [], 0
    while total < size:
        parts.append(rng.choice(pool))
        total += len(parts[-1]) + 1
    return "\n".join(parts)


@pytest.fixture(scope="module")
def smollm2_pair(smollm2_path, hf_oracle):
    oracle = hf_oracle(smollm2_path)
    oracle.encode_special_tokens = True  # as orcd's default parse_special=False
    return orcd.tokenizer.load(smollm2_path), oracle


def _throughput(benchmark, text):
    benchmark.extra_info["MB"] = megabytes = len(text.encode("utf-8")) / 1e6
    if benchmark.stats:  # None when benchmarks are disabled
        benchmark.extra_info["MB/s"] = megabytes / benchmark.stats.stats.mean


def test_encode_orcd(benchmark, smollm2_pair, text):
    benchmark.group = "encode"
    ids = benchmark.pedantic(smollm2_pair[0].encode, args=(text,), rounds=3, iterations=1)
    _throughput(benchmark, text)
    assert ids == smollm2_pair[1].encode(text).ids


def test_encode_tokenizers_library(benchmark, smollm2_pair, text):
    benchmark.group = "encode"
    benchmark.pedantic(lambda: smollm2_pair[1].encode(text).ids, rounds=3, iterations=1)
    _throughput(benchmark, text)


@pytest.mark.parametrize("text", ["中" * 32768, "🎉" * 32768, "a" * 32768, " " * 32768],
                         ids=["han", "emoji", "latin", "spaces"])
def test_encode_one_repeated_character(benchmark, vocab_dir, hf_oracle, text):
    """A hostile prompt: one character repeated to SPEC's prompt limit. Merges are a heap of
    ranks, O(n log n) (quadratic rescans took 7.7 s for 32,768 x 中 here); the ids stay the
    `tokenizers` library's."""
    path = vocab_dir / "ggml-vocab-qwen2.gguf"
    benchmark.group = "encode one repeated character (Qwen2 vocabulary)"
    # a fresh tokenizer each round: its per-chunk cache would otherwise answer rounds 2 and 3
    ids = benchmark.pedantic(lambda tok: tok.encode(text, add_special=False),
                             setup=lambda: ((orcd.tokenizer.load(path),), {}), rounds=3)
    assert ids == hf_oracle(path).encode(text, add_special_tokens=False).ids
