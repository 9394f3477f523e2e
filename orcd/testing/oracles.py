"""llama.cpp (llama-cpp-python, CPU) as an oracle, shared by the oracle tests and the scripts
that write their golden files: teacher-forced logits and greedy continuations with margins."""
from __future__ import annotations

import numpy as np


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """Gap between the best and second-best logit along the last axis."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def llama_logits(llm, ids) -> np.ndarray:
    """Teacher-forced logits (len(ids), vocab) of a llama_cpp.Llama made with logits_all=True."""
    llm.reset()
    llm.eval([int(i) for i in ids])
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def llama_greedy(llm, prompt, n: int) -> tuple[np.ndarray, np.ndarray]:
    """llama.cpp's argmax continuation, one decode step per token, and each step's top-2 margin."""
    llm.reset()
    llm.eval([int(i) for i in prompt])
    ids, margins = [], []
    for _ in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        ids.append(int(np.argmax(logits)))
        margins.append(float(top2_margin(logits)))
        llm.eval([ids[-1]])
    return np.array(ids, np.int32), np.array(margins, np.float32)
