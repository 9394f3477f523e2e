"""Regenerate tests/reference/golden/smollm2.npz: llama.cpp's logits and greedy ids on the
bundled SmolLM2, so CI checks the NumPy reference against llama.cpp without llama.cpp.

    python3 tests/reference/make_golden.py      (needs llama-cpp-python)

Stored: a 64-token teacher-forced text with llama.cpp's top-16 logits per position, and a
chat prompt with llama.cpp's 64 greedy ids and each step's top-2 margin.
"""
from __future__ import annotations

import pathlib

import llama_cpp
import numpy as np

from orcd.models import bundled_path
from orcd.testing.oracles import llama_greedy, llama_logits

OUT = pathlib.Path(__file__).with_name("golden") / "smollm2.npz"
TOP = 16
TEXT = ("The history of computing is a story of ideas and machines. In the nineteenth century, "
        "Charles Babbage designed the Analytical Engine, a mechanical general-purpose computer, "
        "and Ada Lovelace wrote what is often called the first program for it. A century later, "
        "Alan Turing described a universal machine that could simulate any other.")
PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
          "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
          "<|im_start|>assistant\n")
GREEDY_TOKENS = 64


def open_llama(path) -> llama_cpp.Llama:
    return llama_cpp.Llama(str(path), logits_all=True, n_ctx=512, n_batch=512, verbose=False)


def main() -> None:
    llm = open_llama(bundled_path())
    tf_ids = llm.tokenize(TEXT.encode(), add_bos=False)[:64]
    assert len(tf_ids) == 64, f"the text gives only {len(tf_ids)} tokens"
    logits = llama_logits(llm, tf_ids)
    top_ids = np.argsort(-logits, axis=1, kind="stable")[:, :TOP]
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    greedy_ids, margins = llama_greedy(llm, prompt, GREEDY_TOKENS)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(
        OUT, tf_ids=np.array(tf_ids, np.int32), top_ids=top_ids.astype(np.int32),
        top_logits=np.take_along_axis(logits, top_ids, axis=1),
        prompt_ids=np.array(prompt, np.int32), greedy_ids=np.array(greedy_ids, np.int32),
        greedy_margins=np.array(margins, np.float32), llama_cpp_version=llama_cpp.__version__)
    print(f"wrote {OUT}: {len(tf_ids)} teacher-forced positions, {len(greedy_ids)} greedy ids")


if __name__ == "__main__":
    main()
