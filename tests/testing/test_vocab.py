import pytest

from orcd.testing.presets import vocabulary
from orcd.testing.vocab import bytes_to_unicode

REAL_SIZES = {"llama": 49152, "qwen2": 151936, "phi3": 32064, "gpt-oss": 201088}


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt-oss"])
def test_byte_level_vocab_is_complete(arch):
    v = vocabulary(arch, None, real=False)
    ids = {t: i for i, t in enumerate(v.tokens)}
    assert len(ids) == len(v.tokens)
    assert all(c in ids for c in bytes_to_unicode().values())
    for merge in v.merges:
        a, b = merge.split(" ")
        assert a in ids and b in ids and a + b in ids


@pytest.mark.parametrize("arch,specials", [
    ("qwen2", {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}),
    ("gpt-oss", {199998: "<|startoftext|>", 200002: "<|return|>", 200006: "<|start|>", 200012: "<|call|>"}),
    ("phi3", {0: "<unk>", 1: "<s>", 3: "<0x00>", 32000: "<|endoftext|>", 32007: "<|end|>", 32010: "<|user|>"}),
    ("llama", {0: "<|endoftext|>", 1: "<|im_start|>", 2: "<|im_end|>"}),
])
def test_real_vocab_has_specials_at_their_real_ids(arch, specials):
    v = vocabulary(arch, REAL_SIZES[arch], real=True)
    assert len(v.tokens) == REAL_SIZES[arch] == len(set(v.tokens))
    assert {i: v.tokens[i] for i in specials} == specials
    assert v.tokens[v.metadata["tokenizer.ggml.eos_token_id"]] in specials.values()


def test_phi3_pieces_outrank_their_parts():
    v = vocabulary("phi3", None, real=False)
    score = dict(zip(v.tokens, v.scores))
    assert v.metadata["tokenizer.ggml.model"] == "llama" and "▁the" in score
    assert score["▁the"] > score["▁"] and len(v.scores) == len(v.tokens)
