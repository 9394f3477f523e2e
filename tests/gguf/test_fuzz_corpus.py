"""The atheris campaign's seed corpus (fuzz/corpus/gguf/, where any crasher it finds is added
too) replayed through the real opener: each file opens, or is refused with ModelLoadError,
and an opened file's description is built or refused the same way; nothing else."""
from pathlib import Path

import pytest

import orcd.gguf
from orcd.errors import ModelLoadError
from orcd.models import describe

CORPUS = sorted((Path(__file__).parents[2] / "fuzz" / "corpus" / "gguf").iterdir())


@pytest.mark.parametrize("seed", CORPUS, ids=lambda p: p.name)
def test_a_seed_opens_or_is_refused_cleanly(seed):
    try:
        with orcd.gguf.open(seed) as f:
            describe(f)
    except ModelLoadError as e:
        assert str(e)  # a message that says what is wrong


def test_the_corpus_holds_every_architecture_and_the_real_smollm2_header():
    names = {p.name for p in CORPUS}
    assert {"qwen2-header.gguf", "llama-header.gguf", "phi3-header.gguf", "gpt-oss-header.gguf",
            "smollm2-header.gguf", "tiny-complete.gguf"} <= names
    assert sum(p.stat().st_size for p in CORPUS) < 256 * 1024  # small enough to commit
