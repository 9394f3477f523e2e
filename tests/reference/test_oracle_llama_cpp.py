"""The reference against live llama.cpp on the same GGUF files: tiny synthetic qwen2, phi3 and
llama models in several quant mixes, and the bundled SmolLM2."""
import numpy as np
import pytest

from orcd.reference import load
from orcd.testing.oracles import llama_greedy, llama_logits, top2_margin
from reference_oracles import decode_argmax, teacher_forced

pytestmark = pytest.mark.llamacpp
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

QUANTS = ["F32", "Q8_0", "Q4_0", "Q4_K_M"]
CTX = 160
# llama.cpp keeps its KV cache in F16: 1e-3 RMS measured on F32 files, 5e-3 at most
F32_TOLERANCE = 0.02
# with quantized weights llama.cpp also rounds activations to 8 bits: 0.04 RMS, 0.27 at most measured
QUANT_RMS, QUANT_MAX = 0.1, 0.4
# twice the largest tolerated difference: no rounding can flip a margin wider than this
CLEAR_MARGIN = {"F32": 2 * F32_TOLERANCE, "quantized": 2 * QUANT_MAX}


def clear_margin(quant: str) -> float:
    return CLEAR_MARGIN["F32" if quant == "F32" else "quantized"]


def open_llama(path) -> "llama_cpp.Llama":
    return llama_cpp.Llama(str(path), logits_all=True, n_ctx=CTX, n_threads=2, verbose=False)


@pytest.fixture(scope="module")
def pair(synth_model):
    """pair(arch, quant) -> (reference model, llama.cpp model) of one synthetic file."""
    opened = []

    def make(arch, quant):
        path = synth_model(arch, quant)
        opened.append(open_llama(path))
        return load(path, CTX), opened[-1]
    yield make
    for llm in opened:
        llm.close()


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3"])
def test_teacher_forced_logits(pair, arch, quant):
    model, llm = pair(arch, quant)
    ids = np.random.default_rng(0).integers(3, model.config.vocab_size, 64)
    ours, theirs = teacher_forced(model, ids), llama_logits(llm, ids)
    diff = ours - theirs
    if quant == "F32":
        assert np.abs(diff).max() < F32_TOLERANCE
    else:
        assert np.sqrt(np.mean(diff**2)) < QUANT_RMS
        assert np.abs(diff).max() < QUANT_MAX
    clear = top2_margin(theirs) > clear_margin(quant)
    np.testing.assert_array_equal(ours.argmax(axis=1)[clear], theirs.argmax(axis=1)[clear])


@pytest.mark.parametrize("quant", ["F32", "Q4_K_M"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3"])
def test_greedy_continuation(pair, arch, quant):
    model, llm = pair(arch, quant)
    prompt = np.random.default_rng(1).integers(3, model.config.vocab_size, 16)
    ids, margins = llama_greedy(llm, prompt, 64)
    clear = margins > clear_margin(quant)
    # the tiny phi3's logits are flat: only 6 of its 64 Q4_K_M steps are clear, 40-60 elsewhere
    assert clear.sum() >= 4
    np.testing.assert_array_equal(decode_argmax(model, prompt, ids)[clear], ids[clear])


def test_smollm2_teacher_forced(smollm2, smollm2_path):
    llm = open_llama(smollm2_path)
    try:
        ids = llm.tokenize(b"Counting in words: one, two, three, four, five, six, seven, eight, nine, "
                           b"ten, eleven, twelve. The quick brown fox jumps over the lazy dog while "
                           b"the cat sleeps.", add_bos=False)
        theirs = llama_logits(llm, ids)
    finally:
        llm.close()
    ours = teacher_forced(smollm2, ids)
    # llama.cpp's 8-bit activation rounding: 0.17-0.33 RMS expected on SmolLM2 (SPEC §11)
    assert np.sqrt(np.mean((ours - theirs) ** 2)) < 0.33
    clear = top2_margin(theirs) > clear_margin("Q4_1")
    np.testing.assert_array_equal(ours.argmax(axis=1)[clear], theirs.argmax(axis=1)[clear])


@pytest.mark.real_qwen
def test_real_qwen_teacher_forced(qwen2_path):
    """The real Qwen2.5-Coder-0.5B Q4_K_M mix (Q4_K, Q5_0, Q6_K, Q8_0) on code."""
    llm = open_llama(qwen2_path)
    try:
        ids = llm.tokenize(b"def fibonacci(n):\n    if n < 2:\n        return n\n    return "
                           b"fibonacci(n - 1) + fibonacci(n - 2)\n\nprint(fibonacci(10))", add_bos=False)
        theirs = llama_logits(llm, ids)
    finally:
        llm.close()
    ours = teacher_forced(load(qwen2_path, CTX), ids)
    # 8-bit activation rounding again: 0.08 RMS, 0.54 at most measured
    assert np.sqrt(np.mean((ours - theirs) ** 2)) < 0.2
    clear = top2_margin(theirs) > clear_margin("Q4_K_M")
    assert clear.sum() >= len(ids) // 2
    np.testing.assert_array_equal(ours.argmax(axis=1)[clear], theirs.argmax(axis=1)[clear])
