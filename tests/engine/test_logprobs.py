"""Logprobs and prompt scoring on the CPU engine and the real SmolLM2, judged by a log-softmax
written here in float64 over the NumPy reference's logits of the same ids."""
import threading

import numpy as np
import pytest

from orcd.engine.job import run_job
from orcd.engine.logprobs import Scoring, log_softmax, top_ids
from orcd.engine.sampling import SamplingParams
from orcd.reference import KVCache, forward

GREEDY = SamplingParams(temperature=0.0)
# Not in any prompt of the suite: the sentence a scoring harness would send.
HELD_OUT = "The lighthouse keeper counted forty-two ships before the fog rolled in."


def judge(logits: np.ndarray) -> np.ndarray:
    """log p = l - log Σ exp(l), in float64, shifted by the row maximum."""
    l = logits.astype(np.float64)
    m = l.max(-1, keepdims=True)
    return l - m - np.log(np.exp(l - m).sum(-1, keepdims=True))


def reference_logits(engine, ids) -> np.ndarray:
    return forward(engine.model, ids, KVCache(engine.config, engine.model.ctx))


def test_top_ids_break_ties_by_lower_id():
    lp = np.array([-1.0, -0.5, -0.5, -3.0, -0.5, -2.0])
    assert top_ids(lp, 2).tolist() == [1, 2]
    assert top_ids(lp, 4).tolist() == [1, 2, 4, 0]
    assert top_ids(lp, 0).tolist() == [] and top_ids(lp, 6).tolist() == [1, 2, 4, 0, 5, 3]


def test_log_softmax_sums_to_one():
    rows = np.random.default_rng(0).normal(0, 30, (3, 1000)).astype(np.float32)
    assert np.allclose(np.exp(log_softmax(rows)).sum(-1), 1.0, atol=1e-12)
    assert np.abs(log_softmax(rows) - judge(rows)).max() < 1e-12


def test_scoring_limits():
    with pytest.raises(ValueError):
        Scoring(top_n=21)


def test_generated_logprobs_are_the_models_distribution(smollm2_engine, chat_ids):
    ids = chat_ids("Name a colour.")
    scoring = Scoring(top_n=5)
    params = SamplingParams(temperature=0.8, top_k=40, repetition_penalty=1.3, seed=11)
    out = list(smollm2_engine.generate(ids, params, 12, set(), threading.Event(), scoring=scoring))
    assert [e.id for e in scoring.generated] == out
    want = judge(reference_logits(smollm2_engine, ids + out[:-1])[len(ids) - 1:])
    got = np.array([e.logprob for e in scoring.generated])
    # before penalty, temperature and top-k: the raw distribution, whatever was sampled
    assert np.abs(got - want[np.arange(len(out)), out]).max() < 1e-3
    for row, e in zip(want, scoring.generated):
        assert [i for i, _ in e.top] == np.argsort(-row, kind="stable")[:5].tolist()
        assert np.allclose([v for _, v in e.top], row[[i for i, _ in e.top]], atol=1e-3)


def test_greedy_token_is_the_top_alternative(smollm2_engine, chat_ids):
    scoring = Scoring(top_n=3)
    out = list(smollm2_engine.generate(chat_ids("Say hi."), GREEDY, 8, set(), threading.Event(),
                                       scoring=scoring))
    assert [e.top[0][0] for e in scoring.generated] == out
    assert all(e.top[0][1] == e.logprob >= e.top[1][1] for e in scoring.generated)


def test_prompt_scoring_matches_the_reference(smollm2_engine):
    tok = smollm2_engine.tokenizer
    ids = tok.encode(HELD_OUT, add_special=True)
    scoring = Scoring(top_n=0, with_prompt=True)
    out = list(smollm2_engine.generate(ids, GREEDY, 0, set(), threading.Event(), scoring=scoring))
    assert out == [] and [e.id for e in scoring.prompt] == ids[1:]
    want = judge(reference_logits(smollm2_engine, ids))[np.arange(len(ids) - 1), ids[1:]]
    assert abs(sum(e.logprob for e in scoring.prompt) - want.sum()) < 1e-3


def test_prompt_scoring_across_prefill_chunks(smollm2_engine, monkeypatch):
    """A prompt longer than a prefill chunk is scored at every position, the chunk seams too."""
    import orcd.engine.cpu
    monkeypatch.setattr(orcd.engine.cpu, "PREFILL_CHUNK", 5)
    ids = smollm2_engine.tokenizer.encode(HELD_OUT, add_special=True)
    scoring = Scoring(top_n=2, with_prompt=True)
    list(smollm2_engine.generate(ids, GREEDY, 1, set(), threading.Event(), scoring=scoring))
    want = judge(reference_logits(smollm2_engine, ids))[np.arange(len(ids) - 1), ids[1:]]
    assert len(scoring.prompt) == len(ids) - 1
    assert np.abs(np.array([e.logprob for e in scoring.prompt]) - want).max() < 1e-3


def test_job_events_carry_the_entries(smollm2_engine, chat_ids):
    ids = chat_ids("Write one short sentence about the sea.")
    scoring = Scoring(top_n=2, with_prompt=True)
    events = list(run_job(smollm2_engine, smollm2_engine.tokenizer, ids, GREEDY, 20, [],
                          threading.Event(), scoring=scoring))
    kinds = [k for k, _ in events]
    assert kinds[0] == "prompt_logprobs" and kinds[-1] == "end"
    prompt = events[0][1]["logprobs"]
    assert len(prompt) == len(ids) and prompt[0]["logprob"] is None and prompt[0]["top_logprobs"] is None
    assert [e["id"] for e in prompt] == ids
    tokens = [d for k, d in events if k == "token"]
    entries = [e for d in tokens for e in d["logprobs"]]
    text = "".join(d["t"] for d in tokens)
    assert [e["id"] for e in entries] == [e.id for e in scoring.generated][:len(entries)]
    assert "".join(e["token"] for e in entries) == text
    assert [e["text_offset"] for e in entries] == [len("".join(x["token"] for x in entries[:k]))
                                                   for k in range(len(entries))]
    assert all(len(e["top_logprobs"]) == 2 for e in entries)
