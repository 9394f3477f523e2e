"""The gpt-oss reference: its own steps by hand, prefill against decode, and llama.cpp on tiny
synthetic files — live where llama-cpp-python is installed, from golden/ everywhere."""
import pathlib

import gguf
import numpy as np
import pytest

import make_gpt_oss_golden as recipe
from orcd.models import rope
from orcd.reference import KVCache, load
from orcd.reference import gpt_oss
from orcd.reference.ops import attention, matmul
from orcd.testing.oracles import llama_greedy, llama_logits, top2_margin
from orcd.testing.parity import router_gaps

GOLDEN = pathlib.Path(__file__).with_name("golden") / "gpt_oss_tiny_mxfp4.npz"
CTX = recipe.CTX
# llama.cpp keeps its KV cache in F16: 1.2e-3 RMS, 8e-3 at most measured on the F32 file
FLOAT_TOLERANCE = 0.02
# llama.cpp also rounds activations to 8 bits (BF16: to bf16) before each matmul: per-position
# RMS 0.05-0.08 at the 90th percentile measured over Q8_0, Q4_0, Q4_K_M, MXFP4, BF16; the
# rest sit after a routing flip in an earlier layer, whose keys and values they read (to 0.9)
QUANT_ROW_RMS = 0.1
# twice the float tolerance; for quantized mixes twice the largest difference measured at
# untied positions (a 0.45 margin did flip on MXFP4): the tiny model's logits are too flat
# for a margin that covers the outliers after a routing flip
CLEAR_MARGIN = {"float": 2 * FLOAT_TOLERANCE, "quantized": 1.0}
# router logits of the k-th and (k+1)-th expert closer than this may swap under llama.cpp's
# rounding, changing that token's whole MoE output: gaps of 0.003-0.01 flipped on quantized
# mixes; float mixes differ by 1e-3 at most
ROUTER_TIE = {"float": 0.005, "quantized": 0.05}
FLOAT_MIXES = ("F32", "F16")


def mix_kind(quant: str) -> str:
    return "float" if quant in FLOAT_MIXES else "quantized"


def prefill(model, ids) -> np.ndarray:
    return gpt_oss.forward(model, np.asarray(ids), KVCache(model.config, model.ctx))


def decode_argmax(model, prompt, continuation) -> np.ndarray:
    """The argmax after the prompt and after each continuation token fed one at a time."""
    cache = KVCache(model.config, model.ctx)
    logits = gpt_oss.forward(model, np.asarray(prompt), cache, last_only=True)
    picks = []
    for token in continuation:
        picks.append(int(np.argmax(logits[-1])))
        logits = gpt_oss.forward(model, np.array([token]), cache)
    return np.array(picks)


def check_logits(ours, theirs, quant, untied) -> None:
    """Logits within the mix's tolerance and argmax equal where llama.cpp's margin is clear,
    at the positions whose routing is not near a tie (rows of all sequences, flattened)."""
    assert untied.sum() >= len(untied) * 3 // 4, f"{untied.sum()}/{len(untied)} positions route clearly"
    diff = (ours - theirs)[untied]
    if mix_kind(quant) == "float":
        assert np.abs(diff).max() < FLOAT_TOLERANCE
    else:
        assert np.percentile(np.sqrt(np.mean(diff**2, axis=1)), 90) < QUANT_ROW_RMS
    clear = untied & (top2_margin(theirs) > CLEAR_MARGIN[mix_kind(quant)])
    assert clear.sum() >= 4
    np.testing.assert_array_equal(ours.argmax(axis=1)[clear], theirs.argmax(axis=1)[clear])


def compare_sequences(model, sequences, theirs, quant) -> None:
    ours = np.concatenate([prefill(model, ids) for ids in sequences])
    gaps = np.concatenate([router_gaps(model, ids) for ids in sequences], axis=1)
    untied = (gaps >= ROUTER_TIE[mix_kind(quant)]).all(axis=0)
    check_logits(ours, np.concatenate(list(theirs)), quant, untied)


def test_yarn_corr_dims_of_gpt_oss_20b():
    # 64 rope dims, base 150000, original context 4096: 8.09 floored, 17.4 ceiled
    assert rope.yarn_corr_dims(64, 4096, 150000.0) == (8.0, 18.0)


def test_yarn_factors_ramp_from_extrapolation_to_interpolation(synth_model):
    cfg = load(synth_model("gpt-oss"), CTX).config
    factors = rope.yarn_factors(cfg)
    low, high = rope.yarn_corr_dims(cfg.rope_dimension_count,
                                       cfg.rope_scaling_original_context_length, cfg.rope_freq_base)
    assert factors[int(low)] == 1.0 and factors[-1] == cfg.rope_scaling_factor
    assert np.all(np.diff(factors) >= 0)
    assert 1.0 < factors[int(high) - 1] < cfg.rope_scaling_factor


def test_swiglu_oai_by_hand():
    gate = np.array([0.0, 1.0, 10.0, -3.0], np.float32)
    up = np.array([2.0, -9.0, 9.0, 0.0], np.float32)
    sigmoid = lambda x: 1 / (1 + np.exp(-1.702 * x))  # noqa: E731
    # gate 10 clamps to 7, up ±9 clamp to ±7; out = g·σ(1.702 g)·(u + 1)
    expected = [0.0, 1 * sigmoid(1) * -6, 7 * sigmoid(7) * 8, -3 * sigmoid(-3) * 1]
    np.testing.assert_allclose(gpt_oss.swiglu_oai(gate, up), expected, rtol=1e-6)


def test_sinks_take_mass_and_add_no_value():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s, dtype=np.float32) for s in ((5, 4, 8), (2, 5, 8), (2, 5, 8)))
    pos = np.arange(5)
    plain = attention(q, k, v, pos)
    # a sink at -inf takes nothing: plain causal GQA attention (float32 rounding only)
    np.testing.assert_allclose(attention(q, k, v, pos, np.full(4, -np.inf), 0),
                               plain, atol=1e-6)
    # a sink of logit s scales head h's output by Σe^score / (Σe^score + e^s): at the first
    # position (one key, score x) that is 1 / (1 + e^(s - x))
    sinks = np.array([0.0, 1.0, -1.0, 2.0], np.float32)
    out = attention(q, k, v, pos, sinks, 0).reshape(5, 4, 8)[0]
    scores = np.einsum("hd,hd->h", q[0], k[np.arange(4) // 2, 0]) / np.sqrt(8)
    np.testing.assert_allclose(out, plain.reshape(5, 4, 8)[0] / (1 + np.exp(sinks - scores))[:, None],
                               rtol=1e-5)


def test_sliding_window_hides_keys_window_or_more_behind():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s, dtype=np.float32) for s in ((3, 2, 4), (1, 12, 4), (1, 12, 4)))
    pos, window = np.array([9, 10, 11]), 4
    changed = v.copy()
    changed[:, :6] += 10.0  # keys 0..5: position 9 sees 6..9, 10 sees 7..10, 11 sees 8..11
    sinks = np.zeros(2, np.float32)
    same = attention(q, k, v, pos, sinks, window)
    np.testing.assert_array_equal(attention(q, k, changed, pos, sinks, window), same)
    changed[:, 6] += 10.0  # now position 9 sees a change, 10 and 11 do not
    moved = attention(q, k, changed, pos, sinks, window) != same
    assert moved[0].all() and not moved[1:].any()


@pytest.mark.parametrize("quant", ["F32", "MXFP4"])
def test_decode_matches_prefill(synth_model, quant):
    model = load(synth_model("gpt-oss", quant), CTX)
    ids = np.random.default_rng(2).integers(0, model.config.vocab_size, 24)
    whole = prefill(model, ids)
    cache = KVCache(model.config, model.ctx)
    parts = [gpt_oss.forward(model, ids[:10], cache)]
    parts += [gpt_oss.forward(model, ids[i:i + 1], cache) for i in range(10, 24)]
    # the same float32 arithmetic in a different matmul shape: summation order only
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4)


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


@pytest.fixture(scope="module")
def golden_model(golden, tmp_path_factory):
    path = recipe.write_file(tmp_path_factory.mktemp("golden"))
    if recipe.sha256(path) != str(golden["file_sha256"]):
        pytest.fail("the synthetic gpt-oss file changed since golden/gpt_oss_tiny_mxfp4.npz was "
                    "made; regenerate it: python3 tests/reference/make_gpt_oss_golden.py")
    return load(path, CTX)


def test_golden_teacher_forced(golden_model, golden):
    compare_sequences(golden_model, golden["tf_ids"], golden["logits"], recipe.QUANT)


def test_golden_greedy(golden_model, golden):
    clear = golden["greedy_margins"] > CLEAR_MARGIN["quantized"]
    assert clear.sum() >= 4
    picks = decode_argmax(golden_model, golden["prompt_ids"], golden["greedy_ids"])
    np.testing.assert_array_equal(picks[clear], golden["greedy_ids"][clear])


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


def live_pair(llama_cpp, path):
    llm = llama_cpp.Llama(str(path), logits_all=True, n_ctx=CTX, n_threads=2, verbose=False)
    return load(path, CTX), llm


@pytest.mark.llamacpp
@pytest.mark.parametrize("quant", ["F32", "F16", "BF16", "Q8_0", "Q4_K_M", "MXFP4"])
def test_llama_cpp_teacher_forced(llama_cpp, synth_model, quant):
    model, llm = live_pair(llama_cpp, synth_model("gpt-oss", quant))
    sequences = np.random.default_rng(4).integers(0, model.config.vocab_size, (4, 24))
    theirs = [llama_logits(llm, ids) for ids in sequences]
    llm.close()
    compare_sequences(model, sequences, theirs, quant)


@pytest.mark.llamacpp
@pytest.mark.parametrize("quant", ["F32", "MXFP4"])
def test_llama_cpp_greedy(llama_cpp, synth_model, quant):
    model, llm = live_pair(llama_cpp, synth_model("gpt-oss", quant))
    prompt = np.random.default_rng(5).integers(0, model.config.vocab_size, 12)
    ids, margins = llama_greedy(llm, prompt, 32)
    llm.close()
    clear = margins > CLEAR_MARGIN[mix_kind(quant)]
    assert clear.sum() >= 4
    np.testing.assert_array_equal(decode_argmax(model, prompt, ids)[clear], ids[clear])


@pytest.mark.llamacpp
def test_llama_cpp_clamps_like_us(llama_cpp, synth_model, tmp_path, monkeypatch):
    """Expert biases ×80 push gate and up past the clamp at 7, which the plain file never
    reaches; the clamp then moves the logits by about 1 RMS."""
    path = tmp_path / "hot.gguf"
    path.write_bytes(synth_model("gpt-oss", "F32").read_bytes())
    reader = gguf.GGUFReader(path, "r+")
    for t in reader.tensors:
        if t.name.endswith(("ffn_gate_exps.bias", "ffn_up_exps.bias")):
            t.data[...] *= 80
    del reader
    model, llm = live_pair(llama_cpp, path)
    ids = np.random.default_rng(6).integers(0, model.config.vocab_size, (1, 32))
    theirs = [llama_logits(llm, ids[0])]
    llm.close()
    compare_sequences(model, ids, theirs, "F32")
    ours = prefill(model, ids[0])
    monkeypatch.setattr(gpt_oss, "SWIGLU_LIMIT", np.inf)
    assert np.sqrt(np.mean((prefill(model, ids[0]) - ours) ** 2)) > 10 * FLOAT_TOLERANCE


def test_cpu_engine_runs_gpt_oss(synth_model):
    import threading

    from orcd.engine.cpu import CpuEngine
    from orcd.engine.sampling import SamplingParams
    path = synth_model("gpt-oss", "MXFP4")
    engine = CpuEngine()
    engine.load(path, CTX)
    prompt = np.random.default_rng(7).integers(0, engine.config.vocab_size - 32, 12).tolist()
    greedy = SamplingParams(temperature=0.0, seed=0)
    ids = list(engine.generate(prompt, greedy, 8, set(), threading.Event()))
    engine.close()
    np.testing.assert_array_equal(decode_argmax(load(path, CTX), prompt, ids), ids)
