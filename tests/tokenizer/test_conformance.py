"""The GGUF backends give the ids of the `tokenizers` library configured from our export of
the same GGUF, on every corpus string, with and without special-token parsing; decoding
gives the text back. Sources: the bundled SmolLM2 file, llama.cpp's real vocabulary files,
and synthetic models."""
from __future__ import annotations

import dataclasses
import json

import pytest
import tokenizers

import orcd.tokenizer
from orcd.tokenizer import load_vocab
from orcd.tokenizer.base import well_formed
from orcd.tokenizer.bpe import GgufBpeTokenizer
from orcd.tokenizer.export import to_tokenizer_json

VOCABS = ["qwen2", "phi-3", "llama-bpe", "gpt-2", "llama-spm"]  # as conftest.VOCABS fetches
SOURCES = ["smollm2", *(f"vocab:{n}" for n in VOCABS),
           *(f"synth:{a}" for a in ("qwen2", "gpt-oss", "phi3", "llama"))]
KINDS = {"smollm2": "gguf-bpe", "vocab:phi-3": "gguf-spm", "vocab:llama-spm": "gguf-spm",
         "synth:phi3": "gguf-spm"}


@pytest.fixture(scope="module", params=SOURCES)
def source(request):
    kind, _, name = request.param.partition(":")
    if kind == "smollm2":
        path = request.getfixturevalue("smollm2_path")
    elif kind == "vocab":
        path = request.getfixturevalue("vocab_dir") / f"ggml-vocab-{name}.gguf"
    else:
        path = request.getfixturevalue("synth_dir") / f"{name}.gguf"
    oracle = request.getfixturevalue("hf_oracle")(path)
    return request.param, path, orcd.tokenizer.load(path), oracle


@pytest.mark.parametrize("parse_special", [False, True])
def test_ids_equal_tokenizers_library(source, corpus, parse_special):
    name, _, tok, oracle = source
    assert tok.kind == KINDS.get(name, "gguf-bpe")
    oracle.encode_special_tokens = not parse_special
    mismatches = []
    for text in corpus:
        ours = tok.encode(text, add_special=True, parse_special=parse_special)
        theirs = oracle.encode(well_formed(text), add_special_tokens=True).ids
        if ours != theirs:
            mismatches.append((text[:60], ours[:20], theirs[:20]))
    assert not mismatches, f"{len(mismatches)}/{len(corpus)} strings differ: {mismatches[:3]}"


def test_decode_inverts_encode(source, corpus):
    _, _, tok, _ = source
    wrong = [t for t in corpus
             if tok.decode(tok.encode(t, add_special=False)) != well_formed(t)
             or tok.decode(tok.encode(t), skip_special=True) != well_formed(t)]
    assert not wrong, f"{len(wrong)} strings do not survive encode/decode: {wrong[:3]}"


@pytest.mark.parametrize("name", VOCABS)
def test_llama_cpp_test_vectors(vocab_dir, name):
    """The .inp/.out pairs llama.cpp's own test-tokenizer-0 checks (no BOS, no parsing)."""
    path = vocab_dir / f"ggml-vocab-{name}.gguf"
    inp = path.with_suffix(".gguf.inp").read_text(encoding="utf-8")
    texts = inp.split("\n__ggml_vocab_test__\n")
    expected = path.with_suffix(".gguf.out").read_text(encoding="utf-8").split("\n")
    tok = orcd.tokenizer.load(path)
    assert len(texts) >= 40
    for text, ids in zip(texts, expected):
        assert tok.encode(text, add_special=False) == [int(i) for i in ids.split()], repr(text)


@pytest.mark.parametrize("pre", ["default", "gpt-2", "llama-bpe", "qwen2", "smollm", "gpt-4o"])
def test_every_pre_tokenizer_family(smollm2_path, corpus, pre):
    """Each supported tokenizer.ggml.pre over one real byte-level vocabulary (SmolLM2's)."""
    vocab = dataclasses.replace(load_vocab(smollm2_path), pre=pre)
    tok = GgufBpeTokenizer(vocab)
    oracle = tokenizers.Tokenizer.from_str(json.dumps(to_tokenizer_json(vocab)))
    oracle.encode_special_tokens = True
    wrong = [t for t in corpus if tok.encode(t) != oracle.encode(well_formed(t)).ids]
    assert not wrong, f"{len(wrong)} strings differ, e.g. {wrong[:3]}"
