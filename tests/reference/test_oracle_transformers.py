"""The reference against Hugging Face transformers: tiny random Llama, Qwen2 and Phi3 models
written to GGUF as llama.cpp's converter writes them (orcd.testing.hf), F32 and F16."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the GPU box has it)")
pytest.importorskip("transformers", reason="transformers is not installed (the GPU box has it)")

from orcd.reference import load  # noqa: E402
from orcd.testing.hf import tiny_model, write_gguf  # noqa: E402
from reference_oracles import decode_argmax, teacher_forced  # noqa: E402

# float32 throughout on both sides: only summation order differs (1.4e-6 measured)
RELATIVE_TOLERANCE = 1e-4
LONGROPE = dict(max_position_embeddings=256, original_max_position_embeddings=32,
                rope_scaling={"type": "longrope", "long_factor": list(np.linspace(1.0, 4.0, 8)),
                              "short_factor": list(np.linspace(1.0, 2.0, 8))})
CASES = {"llama": ("llama", {}), "qwen2": ("qwen2", {}), "phi3": ("phi3", {}),
         "phi3-longrope": ("phi3", LONGROPE)}


def transformers_logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(np.asarray(ids))[None]).logits[0].numpy()


def rounded_to_f16(model):
    """The model with its matrices rounded to float16, as an F16 file stores them."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(p.half().float())
    return model


@pytest.mark.parametrize("ftype", ["F32", "F16"])
@pytest.mark.parametrize("case", list(CASES))
def test_logits_match_transformers(tmp_path, case, ftype):
    arch, overrides = CASES[case]
    hf = tiny_model(arch, seed=1, **overrides)
    path = write_gguf(hf, tmp_path / f"{case}.gguf", ftype)
    if ftype == "F16":
        rounded_to_f16(hf)
    ids = np.random.default_rng(2).integers(0, hf.config.vocab_size, 64)
    expected = transformers_logits(hf, ids)
    model = load(path, 64)  # > original 32: longrope's long factors, as transformers picks them
    scale = np.abs(expected).max()
    np.testing.assert_allclose(teacher_forced(model, ids), expected, rtol=0, atol=RELATIVE_TOLERANCE * scale)
    np.testing.assert_array_equal(decode_argmax(model, ids[:32], ids[32:]), expected[31:63].argmax(axis=1))


def test_longrope_factors_matter(tmp_path):
    """Without its rope factors the longrope model gives other logits: the test above checks them."""
    hf = tiny_model("phi3", seed=1, **LONGROPE)
    model = load(write_gguf(hf, tmp_path / "phi3.gguf"), 64)
    ids = np.random.default_rng(2).integers(0, hf.config.vocab_size, 64)
    expected = transformers_logits(hf, ids)
    del model.tensors["rope_factors_long.weight"]
    gap = np.abs(teacher_forced(model, ids) - expected).max()
    assert gap > 100 * RELATIVE_TOLERANCE * np.abs(expected).max()


@pytest.mark.llamacpp
@pytest.mark.parametrize("case", ["llama", "phi3-longrope"])
def test_converted_files_agree_with_llama_cpp(tmp_path, case):
    """The converter's conventions (llama's Q/K row permutation, longrope's factors and
    attention factor) are llama.cpp's: it reads the file as the reference does."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    arch, overrides = CASES[case]
    hf = tiny_model(arch, seed=1, **overrides)
    path = write_gguf(hf, tmp_path / f"{case}.gguf")
    ids = np.random.default_rng(2).integers(0, hf.config.vocab_size, 64).tolist()
    llm = llama_cpp.Llama(path, logits_all=True, n_ctx=256, n_threads=2, verbose=False)
    try:
        llm.eval(ids)
        theirs = np.array(llm.scores[:64])
    finally:
        llm.close()
    ours = teacher_forced(load(path, 256), ids)  # 256 > 32: both take the long factors
    # llama.cpp keeps its KV cache in F16: 7e-3 at most measured
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=0.02)
