"""Loading: the backend each file asks for, BOS/EOS/end-of-turn ids, clear errors, the
hf-json backend and `orcd tokenizer export-json`."""
from __future__ import annotations

import gguf
import pytest

import orcd.tokenizer
from orcd.cli import main as orcd_main
from orcd.errors import ModelLoadError
from orcd.tokenizer import load_vocab

SAMPLE = "Hello <|im_start|>world 2024 🦙\n\n  naïve"


def write_vocab(path, **tokenizer_keys):
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in tokenizer_keys.items():
        if isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_array(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_smollm2(smollm2_path):
    tok = orcd.tokenizer.load(smollm2_path)
    assert (tok.kind, tok.vocab_size, tok.bos_id, tok.eos_id) == ("gguf-bpe", 49152, 1, 2)
    assert tok.eot_ids == {0, 2}  # <|endoftext|>, <|im_end|>
    assert not tok.add_bos and tok.encode("Hi")[0] != tok.bos_id


def test_vocab_files(vocab_dir):
    qwen = orcd.tokenizer.load(vocab_dir / "ggml-vocab-qwen2.gguf")
    assert qwen.kind == "gguf-bpe" and {151643, 151645} <= qwen.eot_ids
    phi = orcd.tokenizer.load(vocab_dir / "ggml-vocab-phi-3.gguf")
    assert phi.kind == "gguf-spm" and phi.eot_ids == {2, 32000, 32007}  # </s> <|endoftext|> <|end|>
    assert phi.encode("Hi")[0] == phi.bos_id == 1  # add_bos_token
    # Phi-3 drops the whitespace after its chat tokens (llama.cpp and HF: rstrip)
    assert phi.encode("<|user|>\nHi", add_special=False, parse_special=True) == \
        phi.encode("<|user|>Hi", add_special=False, parse_special=True)
    llama3 = orcd.tokenizer.load(vocab_dir / "ggml-vocab-llama-bpe.gguf")
    assert llama3.encode("Hi")[0] == 128000  # llama-bpe adds BOS by default, as llama.cpp
    assert 128009 in llama3.eot_ids  # <|eot_id|>


def test_harmony_end_is_not_end_of_turn(synth_dir):
    tok = orcd.tokenizer.load(synth_dir / "gpt-oss.gguf")
    vocab = load_vocab(synth_dir / "gpt-oss.gguf")
    texts = {vocab.tokens[i] for i in tok.eot_ids}
    assert {"<|return|>", "<|call|>"} <= texts and "<|end|>" not in texts
    # harmony structure tokens are always rendered, as llama.cpp does
    ids = tok.encode("<|start|>assistant<|channel|>final<|message|>Hi<|end|>", parse_special=True)
    assert "<|channel|>final<|message|>" in tok.decode(ids, skip_special=True)


def test_special_tokens_only_when_parsed(smollm2_path):
    tok = orcd.tokenizer.load(smollm2_path)
    assert 1 in tok.encode(SAMPLE, parse_special=True)
    assert 1 not in tok.encode(SAMPLE)
    assert tok.decode(tok.encode(SAMPLE, parse_special=True), skip_special=True) == \
        SAMPLE.replace("<|im_start|>", "")


def test_unknown_pre_tokenizer(tmp_path):
    path = write_vocab(tmp_path / "v.gguf", **{"tokenizer.ggml.model": "gpt2",
                                                "tokenizer.ggml.pre": "klingon",
                                                "tokenizer.ggml.tokens": ["a", "b"]})
    with pytest.raises(ModelLoadError, match="klingon"):
        orcd.tokenizer.load(path)


def test_unknown_tokenizer_model(tmp_path):
    path = write_vocab(tmp_path / "v.gguf", **{"tokenizer.ggml.model": "bert",
                                                "tokenizer.ggml.tokens": ["a", "b"]})
    with pytest.raises(ModelLoadError, match="bert"):
        orcd.tokenizer.load(path)


def test_no_tokenizer(tmp_path):
    with pytest.raises(ModelLoadError, match="tokenizer-json"):
        orcd.tokenizer.load(write_vocab(tmp_path / "v.gguf"))


def test_hf_json_beside_the_model(smollm2_path, tmp_path, corpus):
    model = tmp_path / "model.gguf"
    model.symlink_to(smollm2_path)
    assert orcd_main(["tokenizer", "export-json", str(model), "-o",
                      str(tmp_path / "tokenizer.json")]) == 0
    tok = orcd.tokenizer.load(model)
    gguf_tok = orcd.tokenizer.load(smollm2_path)
    assert tok.kind == "hf-json" and (tok.bos_id, tok.eos_id) == (1, 2)
    for text in corpus[:300]:
        ids = gguf_tok.encode(text, parse_special=True)
        assert tok.encode(text, parse_special=True) == ids
        assert tok.decode(ids) == gguf_tok.decode(ids)
    assert tok.apply_chat_template([{"role": "user", "content": "x"}]).endswith("assistant\n")


def test_hf_json_explicit_sentencepiece(vocab_dir, tmp_path, hf_oracle):
    json_path = tmp_path / "phi3.json"
    hf_oracle(vocab_dir / "ggml-vocab-phi-3.gguf").save(str(json_path))
    tok = orcd.tokenizer.load(vocab_dir / "ggml-vocab-phi-3.gguf", tokenizer_json=json_path)
    spm = orcd.tokenizer.load(vocab_dir / "ggml-vocab-phi-3.gguf")
    ids = spm.encode(SAMPLE)
    assert tok.kind == "hf-json" and tok.encode(SAMPLE) == ids
    assert tok.decode(ids, skip_special=True) == spm.decode(ids, skip_special=True) == SAMPLE
    stream = tok.stream_decoder(skip_special=True, strip_leading_space=True)
    assert "".join(map(stream.feed, ids)) + stream.flush() == SAMPLE


def test_broken_tokenizer_json(smollm2_path, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        orcd.tokenizer.load(smollm2_path, tokenizer_json=bad)


def test_export_json_refuses_a_file_without_tokenizer(tmp_path, capsys):
    path = write_vocab(tmp_path / "v.gguf")
    assert orcd_main(["tokenizer", "export-json", str(path), "-o", str(tmp_path / "t.json")]) == 1
    assert "MODEL_LOAD_FAILED" in capsys.readouterr().err
