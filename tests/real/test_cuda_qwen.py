"""The CUDA engine on the real Qwen2.5-Coder-0.5B file: the greedy continuations that llama.cpp
and our reference agree on (golden/greedy.json, every step's top-2 margin >= 0.5 under
llama.cpp) come out of the decode loop unchanged, on both decode paths."""
from __future__ import annotations

import threading

import pytest

from orcd.engine.sampling import SamplingParams
from qwen_oracles import CTX, GREEDY_TOKENS, golden

pytestmark = [pytest.mark.gpu, pytest.mark.real_qwen]


@pytest.fixture(scope="module", params=["1", "0"], ids=lambda p: f"fused={p}")
def cuda_qwen(request, qwen2_path):
    from orcd.engine.cuda import CudaEngine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCD_FUSED", request.param)  # read when the model loads
        engine = CudaEngine(0)
        engine.load(qwen2_path, CTX)
    yield engine
    engine.close()


@pytest.mark.parametrize("case", golden("greedy.json"), ids=lambda c: c["kind"] + ":" + c["prompt"][:24])
def test_greedy_continuation_equals_golden(cuda_qwen, case):
    # Margins of at least 0.5 dwarf the 8-bit activation rounding of the decode matvec
    # (llama.cpp's own CPU path rounds the same way and produced these ids).
    ids = list(cuda_qwen.generate(case["prompt_ids"], SamplingParams(temperature=0.0, seed=0),
                                  GREEDY_TOKENS, set(), threading.Event()))
    assert ids == case["ids"]
