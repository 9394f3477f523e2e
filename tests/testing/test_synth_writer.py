import collections
import dataclasses
import math

import gguf
import numpy as np
import pytest

import orcd.gguf
from orcd.models import ARCHITECTURES, describe, expected_tensors
from orcd.testing.quant_mix import MIXES, tensor_type
from orcd.testing.synth import model_config, write_model
from orcd.testing.weights import tensor_data, tensor_rng

CASES = [(a, q) for a in ARCHITECTURES for q in MIXES if q != "MXFP4" or a == "gpt-oss"]


@pytest.mark.parametrize("arch,quant", CASES)
def test_reads_back_identically_with_gguf_py(tiny_model, arch, quant):
    path = tiny_model(arch, quant)
    reader = gguf.GGUFReader(path)
    with orcd.gguf.open(path) as f:
        cfg = describe(f)
        assert f.metadata["general.file_type"] == reader.fields["general.file_type"].contents()
    assert cfg.arch == arch and path.stat().st_size < 4 << 20
    for t in reader.tensors:
        shape = tuple(int(n) for n in t.shape)
        assert t.tensor_type == tensor_type(quant, t.name, shape, cfg.block_count, cfg.tied_output)
        expected = tensor_data(t.name, shape, t.tensor_type, tensor_rng(0, t.name), real=False)
        assert np.array_equal(t.data.view(np.uint8).reshape(-1), expected.view(np.uint8).reshape(-1)), t.name


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_metadata_gives_back_the_generator_config(tiny_model, arch):
    with orcd.gguf.open(tiny_model(arch)) as f:
        cfg = describe(f)
        md = f.metadata
    expected = model_config(arch, vocab_size=len(md["tokenizer.ggml.tokens"]))
    assert dataclasses.replace(cfg, rms_eps=expected.rms_eps) == expected
    assert cfg.rms_eps == pytest.approx(expected.rms_eps, rel=1e-7)  # GGUF stores it as float32
    assert "phi3" not in md["general.name"].lower()  # llama.cpp would look up Phi-3 specials by text
    assert md["tokenizer.chat_template"] and md["tokenizer.ggml.eos_token_id"] < cfg.vocab_size


def test_seed_decides_the_weights(tmp_path):
    a, b, c = (write_model(tmp_path / f"{n}.gguf", "qwen2", quant="Q8_0", seed=s)
               for n, s in (("a", 1), ("b", 1), ("c", 2)))
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_overrides_replace_hyper_parameters(tmp_path):
    path = write_model(tmp_path / "m.gguf", "qwen2", block_count=3, tied_output=False)
    with orcd.gguf.open(path) as f:
        cfg = describe(f)
    assert cfg.block_count == 3 and not cfg.tied_output


def test_tiny_logits_are_not_degenerate(tiny_model):
    """The float weights at their chosen scales give logits that spread over a few units."""
    from orcd.testing.weights import float_values
    cfg = model_config("llama", vocab_size=559)
    x = float_values("token_embd.weight", (cfg.embedding_length, cfg.vocab_size), np.random.default_rng(0))
    h = np.random.default_rng(1).standard_normal(cfg.embedding_length).astype(np.float32)
    assert 1.0 < float(np.std(x @ h)) < 4.0  # unit-RMS hidden state: logit std near the gain 2


def _mix(cfg, quant):
    return collections.Counter(tensor_type(quant, n, s, cfg.block_count, cfg.tied_output).name
                               for n, s in expected_tensors(cfg).items())


def test_q4_k_m_is_the_real_qwen2_coder_mix():
    cfg = model_config("qwen2", "real", vocab_size=151936, tied_output=False)
    assert _mix(cfg, "Q4_K_M") == {"Q5_0": 133, "F32": 121, "Q8_0": 13, "Q4_K": 12, "Q6_K": 12}


@pytest.mark.real_qwen
def test_q4_k_m_mix_equals_the_real_file(qwen2_path):
    with orcd.gguf.open(qwen2_path) as f:
        cfg = describe(f)
        real = collections.Counter(t.ggml_type.name for t in f.tensors.values())
    assert _mix(cfg, "Q4_K_M") == real


def test_mxfp4_mix_keeps_router_norms_and_sinks_f32():
    cfg = model_config("gpt-oss", "real", vocab_size=201088)
    types = {n: tensor_type("MXFP4", n, s, cfg.block_count, cfg.tied_output).name
             for n, s in expected_tensors(cfg).items()}
    assert types["blk.0.ffn_up_exps.weight"] == "MXFP4" and types["blk.0.attn_q.weight"] == "Q8_0"
    assert types["blk.0.ffn_gate_inp.weight"] == types["blk.0.attn_sinks.weight"] == "F32"
    assert types["output.weight"] == types["token_embd.weight"] == "Q8_0"


def test_real_llama_preset_is_the_smollm2_layout(tmp_path, smollm2_path):
    """Same tensor names, shapes and types as the bundled SmolLM2 Q4_1 file."""
    path = write_model(tmp_path / "smollm2.gguf", "llama", preset="real", quant="Q4_1")
    with orcd.gguf.open(path) as ours, orcd.gguf.open(smollm2_path) as real:
        assert describe(ours).vocab_size == describe(real).vocab_size
        layout = {n: (tuple(t.shape), t.ggml_type) for n, t in ours.tensors.items()}
        assert layout == {n: (tuple(t.shape), t.ggml_type) for n, t in real.tensors.items()}
        assert ours.metadata["tokenizer.ggml.pre"] == real.metadata["tokenizer.ggml.pre"]
        assert math.isclose(sum(t.nbytes for t in ours.tensors.values()),
                            sum(t.nbytes for t in real.tensors.values()))
