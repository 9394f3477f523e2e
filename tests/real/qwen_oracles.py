"""What the real-Qwen tests and make_golden.py share: llama.cpp as the oracle (CPU), the
golden files it wrote, margins."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "golden"
CTX = 512
GREEDY_TOKENS = 32
# llama.cpp rounds activations to 8 bits before each quantized matmul (SPEC §11): its logits
# sit a few tenths from an exact F32 pass, so only steps it takes by this much are judged
TEACHER_MARGIN = 0.3
GREEDY_MARGIN = 0.5


def golden(name: str):
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def top2_margin(logits: np.ndarray) -> np.ndarray:
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def open_llama(path):
    import llama_cpp
    return llama_cpp.Llama(str(path), logits_all=True, n_ctx=CTX, n_threads=2, verbose=False)


def llama_logits(llm, ids) -> np.ndarray:
    llm.reset()
    llm.eval(list(ids))
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def greedy_ids(llm, prompt_ids, n: int) -> tuple[np.ndarray, np.ndarray]:
    """llama.cpp's greedy continuation, token by token, with the top-2 margin of each step."""
    llm.reset()
    llm.eval(list(prompt_ids))
    ids, margins = [], []
    for _ in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        ids.append(int(np.argmax(logits)))
        margins.append(float(top2_margin(logits)))
        llm.eval([ids[-1]])
    return np.array(ids), np.array(margins)
