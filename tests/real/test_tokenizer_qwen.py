"""The gguf-bpe tokenizer on the real Qwen2.5-Coder vocabulary (151,936 ids, pre "qwen2"):
the ids of the `tokenizers` library built from our export, llama.cpp's ids on golden
vectors, special tokens in prompts, and the ChatML template."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import tokenizers

from orcd.tokenizer import load_vocab
from orcd.tokenizer.base import well_formed
from orcd.tokenizer.export import to_tokenizer_json
from qwen_oracles import golden

pytestmark = pytest.mark.real_qwen

CORPUS = Path(__file__).parent.parent / "tokenizer" / "corpus.jsonl"
IM_START, IM_END, END_OF_TEXT = 151644, 151645, 151643
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def hf_oracle(qwen2_path) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_str(json.dumps(to_tokenizer_json(load_vocab(qwen2_path))))


@pytest.mark.parametrize("parse_special", [False, True])
def test_ids_equal_tokenizers_library(qwen_tokenizer, hf_oracle, corpus, parse_special):
    assert qwen_tokenizer.kind == "gguf-bpe" and qwen_tokenizer.vocab_size == 151936
    hf_oracle.encode_special_tokens = not parse_special
    differ = [(text[:60], ours[:12], theirs[:12]) for text in corpus
              if (ours := qwen_tokenizer.encode(text, parse_special=parse_special))
              != (theirs := hf_oracle.encode(well_formed(text)).ids)]
    assert not differ, f"{len(differ)}/{len(corpus)} strings differ: {differ[:3]}"


def test_decode_inverts_encode(qwen_tokenizer, corpus):
    wrong = [t for t in corpus if qwen_tokenizer.decode(qwen_tokenizer.encode(t)) != well_formed(t)]
    assert not wrong, f"{len(wrong)} strings do not survive encode/decode: {wrong[:3]}"


@pytest.mark.parametrize("parse_special", [False, True])
def test_golden_vectors_of_llama_cpp(qwen_tokenizer, parse_special):
    vectors = golden("tokens.json")
    assert len(vectors) == 30
    key = "ids_special" if parse_special else "ids_plain"
    for v in vectors:
        assert qwen_tokenizer.encode(v["text"], parse_special=parse_special) == v[key], v["text"]
        assert qwen_tokenizer.decode(v[key]) == v["text"]


@pytest.mark.llamacpp
def test_golden_vectors_are_live_llama_cpp(qwen2_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    vocab = llama_cpp.Llama(str(qwen2_path), vocab_only=True, verbose=False)
    try:
        for v in golden("tokens.json"):
            raw = v["text"].encode()
            assert vocab.tokenize(raw, add_bos=False, special=False) == v["ids_plain"], v["text"]
            assert vocab.tokenize(raw, add_bos=False, special=True) == v["ids_special"], v["text"]
    finally:
        vocab.close()


def test_special_tokens_in_prompts(qwen_tokenizer):
    """SPEC §2: special-token text in a prompt is that special token (parse_special=True)."""
    text = "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>"
    ids = qwen_tokenizer.encode(text, parse_special=True)
    assert ids == [IM_START, 872, 198, 13048, IM_END, 198, END_OF_TEXT]
    plain = qwen_tokenizer.encode(text, parse_special=False)
    assert not {IM_START, IM_END, END_OF_TEXT} & set(plain) and len(plain) > len(ids)
    assert qwen_tokenizer.decode(ids) == text
    assert qwen_tokenizer.decode(ids, skip_special=True) == "user\nHi\n"
    assert qwen_tokenizer.add_bos is False and {IM_END, END_OF_TEXT} <= qwen_tokenizer.eot_ids


CONVERSATIONS = [
    ([{"role": "user", "content": "Write a haiku."}], True,
     f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n"
     "<|im_start|>user\nWrite a haiku.<|im_end|>\n"
     "<|im_start|>assistant\n"),
    ([{"role": "system", "content": "You write Python."},
      {"role": "user", "content": "Add two numbers."},
      {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
      {"role": "user", "content": "Now subtract."}], True,
     "<|im_start|>system\nYou write Python.<|im_end|>\n"
     "<|im_start|>user\nAdd two numbers.<|im_end|>\n"
     "<|im_start|>assistant\ndef add(a, b):\n    return a + b<|im_end|>\n"
     "<|im_start|>user\nNow subtract.<|im_end|>\n"
     "<|im_start|>assistant\n"),
    ([{"role": "system", "content": "Réponds en français. 🙂"},
      {"role": "user", "content": "Bonjour"},
      {"role": "assistant", "content": "Bonjour !"}], False,
     "<|im_start|>system\nRéponds en français. 🙂<|im_end|>\n"
     "<|im_start|>user\nBonjour<|im_end|>\n"
     "<|im_start|>assistant\nBonjour !<|im_end|>\n"),
]


@pytest.mark.parametrize("messages,add_generation_prompt,expected", CONVERSATIONS)
def test_chat_template_renders_chatml(qwen_tokenizer, messages, add_generation_prompt, expected):
    text = qwen_tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    assert text == expected
    ids = qwen_tokenizer.encode(text, parse_special=True)
    turns = len(messages) + (messages[0]["role"] != "system")  # the default system message
    assert (ids.count(IM_START), ids.count(IM_END)) == (turns + add_generation_prompt, turns)
