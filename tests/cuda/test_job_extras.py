"""Logprobs, prompt scoring and the grammar mask on the GPU (cuda/src/logprobs.cu, extras.cu)
against the NumPy reference: log-softmax of the reference logits of the same ids."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from orcd import _cuda, reference
from orcd.engine.constraint import bitmask_words, masked
from orcd.engine.logprobs import MAX_TOP_LOGPROBS, Scoring, log_softmax, top_ids
from orcd.engine.sampling import SamplingParams, sample
from orcd.testing.parity import tolerance
from orcd.testing.synth import write_model

CTX = 256
GREEDY = SamplingParams(temperature=0.0)
# float32 logits, a float32 log-sum-exp over up to 201,088 values: ~1e-6 relative
KERNEL_TOLERANCE = 1e-4


def cuda_engine(path):
    from orcd.engine.cuda import CudaEngine
    engine = CudaEngine(0)
    engine.load(path, CTX)
    return engine


def reference_logits(path, ids):
    model = reference.load(path, CTX)
    return reference.forward(model, np.asarray(ids), reference.KVCache(model.config, CTX))


def logprob_tolerance(logits) -> float:
    # log p = l - lse(l): each logit within tolerance(), and so the log-sum-exp: twice that
    return 2 * tolerance(logits)


@pytest.fixture(scope="module")
def qwen2_tiny(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("lp") / "qwen2.gguf", "qwen2", quant="Q8_0")


def test_the_record_holds_the_python_limit():
    assert _cuda.MAX_TOP_LOGPROBS == MAX_TOP_LOGPROBS


@pytest.mark.gpu
@pytest.mark.parametrize("vocab", [7, 2048, 49152, 151936, 201088])
@pytest.mark.parametrize("top_n", [0, 1, 5, 20])
def test_kernel_matches_numpy(vocab, top_n):
    rng = np.random.default_rng(vocab + top_n)
    logits = rng.normal(0, 8, (3, vocab)).astype(np.float32)
    logits[1, rng.integers(0, vocab, 30)] = logits[1].max()  # ties: lower id first
    ids = rng.integers(0, vocab, 3)
    top_n = min(top_n, vocab)
    got = _cuda.token_logprobs(logits, ids, top_n)
    want = log_softmax(logits)
    for row, record in enumerate(got):
        assert record.id == ids[row]
        assert abs(record.logprob - want[row, ids[row]]) < KERNEL_TOLERANCE
        assert [i for i, _ in record.top] == top_ids(want[row], top_n).tolist()
        assert np.allclose([v for _, v in record.top], want[row, [i for i, _ in record.top]],
                           atol=KERNEL_TOLERANCE)


@pytest.mark.gpu
@pytest.mark.parametrize("params", [GREEDY, SamplingParams(temperature=0.9, top_k=30, top_p=0.9, seed=5)])
def test_masked_sampler_picks_the_reference_id(params):
    rng = np.random.default_rng(9)
    for trial in range(20):
        vocab = int(rng.integers(40, 5000))
        logits = rng.normal(0, 3, vocab).astype(np.float32)
        allowed = rng.random(vocab) < 0.1
        allowed[rng.integers(0, vocab)] = True
        mask = np.packbits(allowed, bitorder="little").view(np.uint8)
        words = np.zeros(bitmask_words(vocab) * 4, np.uint8)
        words[:mask.size] = mask
        mask = words.view("<u4")
        want = sample(masked(logits, mask), params, trial, [1, 2])
        assert allowed[want]
        assert _cuda.sample_logits(logits, params, trial, [1, 2], mask) == want, trial


@pytest.mark.gpu
@pytest.mark.parametrize("params", [GREEDY, SamplingParams(temperature=1.0, seed=3)])
def test_generated_logprobs_within_the_family_tolerance(qwen2_tiny, params):
    engine = cuda_engine(qwen2_tiny)
    prompt = list(np.random.default_rng(4).integers(0, engine.config.vocab_size, 9))
    scoring = Scoring(top_n=5)
    ids = list(engine.generate(prompt, params, 32, set(), threading.Event(), scoring=scoring))
    assert [r.id for r in scoring.generated] == ids
    logits = reference_logits(qwen2_tiny, prompt + ids[:-1])[len(prompt) - 1:]
    want = log_softmax(logits)
    got = np.array([r.logprob for r in scoring.generated])
    assert np.abs(got - want[np.arange(len(ids)), ids]).max() <= logprob_tolerance(logits)
    if params is GREEDY:
        assert [r.top[0][0] for r in scoring.generated] == ids
    engine.close()


@pytest.mark.gpu
def test_prompt_scoring_on_the_gpu(smollm2_path):
    """Prompts past a scoring chunk (128 rows), then max_tokens 0 as an echo harness sends it."""
    engine = cuda_engine(smollm2_path)
    tok = engine.tokenizer
    ids = tok.encode("The lighthouse keeper counted forty-two ships before the fog. " * 20, add_special=True)[:200]
    scoring = Scoring(top_n=3, with_prompt=True)
    assert list(engine.generate(ids, GREEDY, 0, set(), threading.Event(), scoring=scoring)) == []
    logits = reference_logits(smollm2_path, ids)
    want = log_softmax(logits)[np.arange(len(ids) - 1), ids[1:]]
    got = np.array([r.logprob for r in scoring.prompt])
    assert [r.id for r in scoring.prompt] == ids[1:]
    assert np.abs(got - want).max() <= logprob_tolerance(logits)
    again = Scoring(top_n=0, with_prompt=True)
    out = list(engine.generate(ids[:50], GREEDY, 4, set(), threading.Event(), scoring=again))
    assert len(out) == 4 and len(again.prompt) == 49 and len(again.generated) == 4
    engine.close()


class Forced:
    """A constraint that allows exactly one id per step: the GPU must follow it."""

    def __init__(self, ids, vocab):
        self.ids, self.vocab, self.step, self.asked = list(ids), vocab, 0, 0

    def allowed(self):
        self.asked += 1
        bits = np.zeros(bitmask_words(self.vocab) * 32, bool)
        bits[self.ids[min(self.step, len(self.ids) - 1)]] = True
        return np.packbits(bits, bitorder="little").view("<u4")

    def consume(self, token):
        assert token == self.ids[self.step]
        self.step += 1


@pytest.mark.gpu
@pytest.mark.parametrize("params", [GREEDY, SamplingParams(temperature=1.5, seed=8)])
def test_constrained_decode_follows_the_mask(qwen2_tiny, params, monkeypatch):
    for graphs in ("1", "0"):
        monkeypatch.setenv("ORCD_CUDA_GRAPH", graphs)  # read at engine creation
        engine = cuda_engine(qwen2_tiny)
        forced = list(np.random.default_rng(6).integers(0, engine.config.vocab_size, 12))
        constraint = Forced(forced, engine.config.vocab_size)
        scoring = Scoring(top_n=1)
        ids = list(engine.generate([1, 2, 3], params, 12, set(), threading.Event(), scoring=scoring,
                                   constraint=constraint))
        assert ids == forced and constraint.asked >= 12
        # the logprobs stay the model's own, before the mask
        logits = reference_logits(qwen2_tiny, [1, 2, 3] + ids[:-1])[2:]
        want = log_softmax(logits)[np.arange(12), ids]
        assert np.abs(np.array([r.logprob for r in scoring.generated]) - want).max() <= logprob_tolerance(logits)
        # an unconstrained job after a constrained one takes the unmasked graph
        free = list(engine.generate([1, 2, 3], GREEDY, 12, set(), threading.Event()))
        assert free != forced and free == list(engine.generate([1, 2, 3], GREEDY, 12, set(), threading.Event()))
        engine.close()


@pytest.mark.gpu
def test_json_schemas_on_the_gpu(smollm2_path):
    """The schemas of tests/engine/test_grammar.py, two seeds each at temperature 1, on the CUDA
    engine: the mask applied on the GPU leaves no invalid object."""
    import json
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is the judge")
    pytest.importorskip("llguidance", reason="the grammar engine is not installed here")
    from orcd.engine.grammar import Grammars, json_schema_grammar
    from orcd.engine.job import run_job
    from orcd.testing.schemas import CASES
    engine = cuda_engine(smollm2_path)
    grammars = Grammars(engine.tokenizer, engine.config.vocab_size)
    tok = engine.tokenizer
    for schema, question in CASES:
        prompt = tok.encode(tok.apply_chat_template([{"role": "user", "content": question}]), parse_special=True)
        for seed in range(2):
            events = list(run_job(engine, tok, prompt, SamplingParams(temperature=1.0, seed=seed), 200, [],
                                  threading.Event(), constraint=grammars.matcher(json_schema_grammar(schema, "s"))))
            text = "".join(d["t"] for k, d in events if k == "token")
            assert events[-1][1]["stop_reason"] == "eos", text
            jsonschema.validate(json.loads(text), schema)
    engine.close()
