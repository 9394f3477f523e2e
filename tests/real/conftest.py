"""The tests here run on the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M file (`make models`) and
skip with the reason where it is absent; test_haiku_words.py needs no model."""
from __future__ import annotations

import pytest

import orcd.tokenizer
from orcd.reference import load
from qwen_oracles import CTX, open_llama


@pytest.fixture(scope="session")
def qwen_tokenizer(qwen2_path):
    return orcd.tokenizer.load(qwen2_path)


@pytest.fixture(scope="module")
def qwen_reference(qwen2_path):
    """Dequantized once for the module (2.5 GB of float32), freed after it."""
    return load(qwen2_path, CTX)


@pytest.fixture(scope="module")
def live_llama(qwen2_path):
    """llama.cpp on the same file (CPU), where llama-cpp-python is installed."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: golden files only")
    llm = open_llama(qwen2_path)
    yield llm
    llm.close()
