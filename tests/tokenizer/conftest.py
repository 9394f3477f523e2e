"""Tokenizer fixtures: the conformance corpus, the real vocabulary-only GGUFs that ship in
llama-cpp-python's source distribution (fetched once into ~/.cache/orcd/vocab/), the bundled
SmolLM2 file and synthetic models from orcd.testing.synth."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import tokenizers

HERE = Path(__file__).parent
VOCAB_CACHE = Path.home() / ".cache" / "orcd" / "vocab"
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
VOCABS = ("qwen2", "phi-3", "llama-bpe", "gpt-2", "llama-spm")
SYNTH_ARCHS = ("qwen2", "gpt-oss", "phi3", "llama")


def fetch_vocabs() -> Path:
    """ggml-vocab-{name}.gguf with its .inp/.out test vectors, from the sdist's
    vendor/llama.cpp/models/. Raises OSError with the reason when it cannot."""
    wanted = {f"ggml-vocab-{n}.gguf{ext}" for n in VOCABS for ext in ("", ".inp", ".out")}
    if all((VOCAB_CACHE / name).is_file() for name in wanted):
        return VOCAB_CACHE
    with tempfile.TemporaryDirectory() as tmp:
        pip = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                              "--no-binary=:all:", "--timeout", "15",
                              "--retries", "1", LLAMA_CPP_SDIST, "-d", tmp],
                             capture_output=True, text=True, timeout=300)
        archives = list(Path(tmp).glob("*.tar.gz"))
        if pip.returncode or not archives:
            raise OSError(f"pip download {LLAMA_CPP_SDIST} failed: {pip.stderr.strip()[-300:]}")
        VOCAB_CACHE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in wanted and "/vendor/llama.cpp/models/" in member.name:
                    (VOCAB_CACHE / name).write_bytes(tar.extractfile(member).read())
    missing = [n for n in wanted if not (VOCAB_CACHE / n).is_file()]
    if missing:
        raise OSError(f"the sdist lacks {missing}")
    return VOCAB_CACHE


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    try:
        return fetch_vocabs()
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"llama.cpp vocabulary files unavailable (no package index?): {e}")


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    with open(HERE / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from orcd.testing.synth import write_model
    folder = tmp_path_factory.mktemp("synth_tokenizers")
    for arch in SYNTH_ARCHS:
        write_model(folder / f"{arch}.gguf", arch)
    return folder


def _hf_oracle(gguf_path) -> tokenizers.Tokenizer:
    from orcd.tokenizer import load_vocab
    from orcd.tokenizer.export import to_tokenizer_json
    return tokenizers.Tokenizer.from_str(json.dumps(to_tokenizer_json(load_vocab(gguf_path))))


@pytest.fixture(scope="session")
def hf_oracle():
    """gguf_path -> the `tokenizers` library configured from our export of its tokenizer."""
    return _hf_oracle
