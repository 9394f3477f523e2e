"""llama.cpp itself (llama-cpp-python, vocab_only) as a second oracle on the whole corpus."""
from __future__ import annotations

import pytest
import regex

import orcd.tokenizer
from orcd.tokenizer.base import well_formed

pytestmark = pytest.mark.llamacpp
NON_ASCII_SPACE = regex.compile(r"[^\x00-\x7f](?<=\p{White_Space})")


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


@pytest.mark.parametrize("name", ["smollm2", "qwen2", "gpt-2", "llama-bpe", "phi-3"])
def test_ids_equal_llama_cpp(request, llama_cpp, corpus, name):
    if name == "smollm2":
        path = request.getfixturevalue("smollm2_path")
    else:
        path = request.getfixturevalue("vocab_dir") / f"ggml-vocab-{name}.gguf"
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    tok = orcd.tokenizer.load(path)
    wrong = []
    for parse_special in (False, True):
        for text in map(well_formed, corpus):
            # Phi-3 drops the whitespace after its chat tokens: llama.cpp only ASCII
            # whitespace, `tokenizers` (whose rules we follow) all Unicode White_Space.
            if name == "phi-3" and parse_special and NON_ASCII_SPACE.search(text):
                continue
            theirs = llm.tokenize(text.encode("utf-8"), add_bos=True, special=parse_special)
            if tok.encode(text, parse_special=parse_special) != theirs:
                wrong.append((parse_special, text[:60]))
    assert not wrong, f"{len(wrong)} strings differ from llama.cpp, e.g. {wrong[:3]}"
