"""The NumPy reference on the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M file against llama.cpp
(CPU): teacher-forced argmax and greedy continuations where llama.cpp's top-2 margin is
clear. Golden files (make_golden.py) always; live llama.cpp where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

from orcd.reference import KVCache, forward
from orcd.testing.oracles import llama_logits, top2_margin
from qwen_oracles import GREEDY_MARGIN, GREEDY_TOKENS, TEACHER_MARGIN, golden

pytestmark = pytest.mark.real_qwen

# llama.cpp's 8-bit activation rounding (SPEC §11): 0.074 RMS and 0.54 at most measured over
# the 64 x 151936 teacher-forced logits of this file, 0.29 at most on llama.cpp's top 5
LOGIT_RMS, LOGIT_MAX = 0.15, 0.8


def teacher_forced(model, ids) -> np.ndarray:
    return forward(model, ids, KVCache(model.config, model.ctx))


def greedy_through_cache(model, prompt_ids, n: int) -> list[int]:
    """Our own greedy continuation through the decode path: one token at a time over the cache."""
    cache = KVCache(model.config, model.ctx)
    logits = forward(model, prompt_ids, cache, last_only=True)[-1]
    ids = []
    for _ in range(n):
        ids.append(int(np.argmax(logits)))
        logits = forward(model, ids[-1:], cache)[-1]
    return ids


@pytest.fixture(scope="module")
def teacher():
    return golden("teacher_forced.json")


@pytest.fixture(scope="module")
def teacher_logits(qwen_reference, teacher):
    return teacher_forced(qwen_reference, teacher["ids"])


@pytest.fixture(scope="module")
def greedy_cases():
    return golden("greedy.json")


def test_teacher_forced_argmax_matches_golden(teacher, teacher_logits):
    clear = np.array(teacher["margin"]) > TEACHER_MARGIN
    assert len(clear) == 64 and clear.sum() >= 48
    ours = teacher_logits.argmax(axis=1)
    np.testing.assert_array_equal(ours[clear], np.array(teacher["argmax"])[clear])


def test_teacher_forced_top_logits_match_golden(teacher, teacher_logits):
    ours = np.take_along_axis(teacher_logits, np.array(teacher["top_ids"]), axis=1)
    assert np.abs(ours - np.array(teacher["top_logits"])).max() < LOGIT_MAX


def test_greedy_matches_golden(qwen_reference, greedy_cases):
    """Teacher-forced over prompt + golden continuation: the argmax at every continuation
    position is the golden id exactly when greedy decoding reproduces the continuation."""
    kinds = [c["kind"] for c in greedy_cases]
    assert kinds.count("plain") >= 5 and kinds.count("chat") >= 3
    for case in greedy_cases:
        assert min(case["margins"]) >= GREEDY_MARGIN and len(case["ids"]) == GREEDY_TOKENS
        logits = teacher_forced(qwen_reference, case["prompt_ids"] + case["ids"][:-1])
        ours = logits[len(case["prompt_ids"]) - 1:].argmax(axis=1)
        assert ours.tolist() == case["ids"], case["prompt"]


@pytest.mark.parametrize("kind", ["plain", "chat"])
def test_greedy_through_the_cache_matches_golden(qwen_reference, greedy_cases, kind):
    case = next(c for c in greedy_cases if c["kind"] == kind)
    assert greedy_through_cache(qwen_reference, case["prompt_ids"], GREEDY_TOKENS) == case["ids"]


def test_chat_prompts_are_the_rendered_template(qwen_tokenizer, greedy_cases):
    for case in (c for c in greedy_cases if c["kind"] == "chat"):
        assert qwen_tokenizer.apply_chat_template(case["messages"]) == case["prompt"]
        assert qwen_tokenizer.encode(case["prompt"], parse_special=True) == case["prompt_ids"]


@pytest.mark.llamacpp
def test_teacher_forced_matches_live_llama_cpp(live_llama, teacher, teacher_logits):
    theirs = llama_logits(live_llama, teacher["ids"])
    # llama.cpp's CPU kernels differ by build and processor (SIMD paths): where its own top two
    # nearly tie (0.026 apart at one position, seen with 0.3.36 on one machine) its pick may
    # differ from the recorded one, as SPEC §11 says of this judge.
    clear = top2_margin(theirs) > TEACHER_MARGIN
    np.testing.assert_array_equal(theirs.argmax(axis=1)[clear], np.asarray(teacher["argmax"])[clear])
    diff = teacher_logits - theirs
    assert np.sqrt(np.mean(diff**2)) < LOGIT_RMS
    assert np.abs(diff).max() < LOGIT_MAX
    ours = teacher_logits.argmax(axis=1)
    np.testing.assert_array_equal(ours[clear], theirs.argmax(axis=1)[clear])


@pytest.mark.llamacpp
def test_greedy_golden_is_live_llama_cpp(live_llama, greedy_cases):
    """llama.cpp, teacher-forced over prompt + golden continuation, still picks every golden
    id by the recorded margin (one evaluation per case instead of 32)."""
    for case in greedy_cases:
        logits = llama_logits(live_llama, case["prompt_ids"] + case["ids"][:-1])
        tail = logits[len(case["prompt_ids"]) - 1:]
        assert tail.argmax(axis=1).tolist() == case["ids"], case["prompt"]
        assert top2_margin(tail).min() >= GREEDY_MARGIN
