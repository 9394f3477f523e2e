import dataclasses

import pytest

import orcd.gguf
from orcd.engine.base import context_for, quant_kind
from orcd.models import describe
from orcd.testing.synth import write_model


@pytest.mark.parametrize("quant,kind", [("Q4_K_M", "Q4_K_M"), ("F32", "F32"), ("MXFP4", "MXFP4")])
def test_quant_kind_names_the_file_type(tmp_path, quant, kind):
    arch = "gpt-oss" if quant == "MXFP4" else "qwen2"
    with orcd.gguf.open(write_model(tmp_path / "m.gguf", arch, quant=quant)) as f:
        assert quant_kind(f) == kind


def test_quant_kind_without_file_type_is_the_dominant_matrix_type(tmp_path):
    pytest.importorskip("transformers", reason="the file without file_type comes from transformers")
    from orcd.testing.hf import tiny_model, write_gguf
    with orcd.gguf.open(write_gguf(tiny_model("llama"), tmp_path / "m.gguf", "F16")) as f:
        assert "general.file_type" not in f.metadata
        assert quant_kind(f) == "F16"


def test_context_defaults_to_the_model_context_capped_at_8192(smollm2_path):
    with orcd.gguf.open(smollm2_path) as f:
        config = describe(f)
    assert config.context_length == 8192
    assert context_for(config, None) == 8192 and context_for(config, 512) == 512
    assert context_for(dataclasses.replace(config, context_length=32768), None) == 8192
