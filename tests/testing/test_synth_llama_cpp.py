"""An independent reader: llama.cpp loads the tiny models, tokenizes and evaluates them."""
import numpy as np
import pytest

pytestmark = pytest.mark.llamacpp
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

QUANTS = ["F32", "Q8_0", "Q4_0", "Q4_K_M"]
CASES = [(a, q) for a in ("llama", "qwen2", "phi3", "gpt-oss") for q in QUANTS] + [("gpt-oss", "MXFP4")]
SPECIAL = {"llama": b"<|im_start|>", "qwen2": b"<|im_end|>", "phi3": b"<|user|>", "gpt-oss": b"<|message|>"}


@pytest.mark.parametrize("arch,quant", CASES)
def test_llama_cpp_evaluates(tiny_model, arch, quant):
    model = llama_cpp.Llama(str(tiny_model(arch, quant)), n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    try:
        assert len(model.tokenize(SPECIAL[arch], add_bos=False, special=True)) == 1
        tokens = model.tokenize(b"def hello(): return 'the quick brown fox'", add_bos=True)
        model.eval(tokens)
        logits = np.asarray(model.scores[len(tokens) - 1], dtype=np.float64)
    finally:
        model.close()
    assert np.isfinite(logits).all()
    assert 0.5 < logits.std() < 10  # neither flat nor blown up: the weights' scales are sane


@pytest.mark.parametrize("arch", ["llama", "qwen2", "phi3", "gpt-oss"])
def test_llama_cpp_round_trips_text(tiny_model, arch):
    text = "Hello wörld — 你好 🙂 def f(x):\n\treturn x**2  "
    model = llama_cpp.Llama(str(tiny_model(arch)), n_ctx=64, vocab_only=True, verbose=False)
    try:
        back = model.detokenize(model.tokenize(text.encode(), add_bos=False)).decode()
    finally:
        model.close()
    # SentencePiece (phi3) prefixes a space to the text, as real Phi-3 files do.
    assert back == (" " + text if arch == "phi3" else text)
