"""Golden token ids for the bundled SmolLM2 file, produced by llama.cpp's tokenizer
(make_golden.py). Re-checked against llama.cpp itself when llama-cpp-python is installed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import orcd.tokenizer

GOLDEN = json.loads((Path(__file__).parent / "golden_smollm2.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    return orcd.tokenizer.load(smollm2_path)


def test_golden_file_is_complete():
    assert len(GOLDEN["cases"]) == 30
    assert any(c["parse_special"] for c in GOLDEN["cases"])


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["text"][:24])
def test_ids_match_llama_cpp_golden(smollm2, case):
    assert smollm2.encode(case["text"], add_special=False,
                          parse_special=case["parse_special"]) == case["ids"]


@pytest.mark.llamacpp
def test_golden_still_matches_llama_cpp(smollm2_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    llm = llama_cpp.Llama(model_path=str(smollm2_path), vocab_only=True, verbose=False)
    for case in GOLDEN["cases"]:
        ids = llm.tokenize(case["text"].encode("utf-8"), add_bos=False,
                           special=case["parse_special"])
        assert ids == case["ids"], case["text"]
