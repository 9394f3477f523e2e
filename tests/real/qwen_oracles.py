"""What the real-Qwen tests and make_golden.py share: llama.cpp as the oracle (CPU), the
golden files it wrote, margins."""
from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
CTX = 512
GREEDY_TOKENS = 32
# llama.cpp rounds activations to 8 bits before each quantized matmul (SPEC §11): its logits
# sit a few tenths from an exact F32 pass, so only steps it takes by this much are judged
TEACHER_MARGIN = 0.3
GREEDY_MARGIN = 0.5


def golden(name: str):
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def open_llama(path):
    import llama_cpp
    return llama_cpp.Llama(str(path), logits_all=True, n_ctx=CTX, n_threads=2, verbose=False)
