"""Writes tests/real/golden/*.json from llama.cpp (llama-cpp-python, CPU) on the real
Qwen2.5-Coder-0.5B-Instruct Q4_K_M file: tokenizer vectors, teacher-forced argmax with
margins, and greedy continuations of prompts whose every step llama.cpp takes by a clear
margin. The tests compare the NumPy reference with these files always, and with live
llama.cpp where it is installed.

    python3 tests/real/make_golden.py
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import llama_cpp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from qwen_oracles import (  # noqa: E402
    CTX, GOLDEN, GREEDY_MARGIN, GREEDY_TOKENS, open_llama)

import orcd.tokenizer  # noqa: E402
from orcd.testing.oracles import llama_greedy, llama_logits, top2_margin  # noqa: E402
from orcd.models import real_path  # noqa: E402

TOKENIZER_TEXTS = [
    "Hello, world!",
    "def add(a, b):\n    return a + b\n",
    "    indented\n\n\n\ttabs\t\tand   spaces   ",
    "It's, we're, they'll, I'd, you've, she's, CAN'T",
    "1234567890 3.14159 1e-9 0xFF 1,000,000",
    "Café naïve façade Ærø İstanbul Łódź",
    "日本の首都は東京です。",
    "中文分词测试：你好，世界！",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "🎉🚀 emoji 👩‍💻 and flags 🇫🇷",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "https://example.com/path?q=1&r=two#frag",
    "  leading and trailing  ",
    "\n\n\n",
    "a" * 40,
    "The quick brown fox jumps over the lazy dog.",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_end|><|im_end|>",
    "not special: <|im_start |> <im_start> |im_end|",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "x = {'key': [1, 2, 3], \"other\": None}",
    "λx. x + 1 → ∀ε>0 ∃δ>0",
    "Ελληνικά και 한국어 텍스트",
    "tab\tnewline\r\nreturn\rend",
]

TEACHER_TEXT = (
    "def fibonacci(n):\n"
    "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n\n"
    "The function above runs in linear time and constant memory, which is why it is "
    "preferred over the naive recursive version."
)
TEACHER_POSITIONS = 64
TOP_LOGITS = 5

# Candidates, some of which llama.cpp continues with an unclear step (dropped, printed); the
# others were found the same way from a longer list.
PLAIN_CANDIDATES = [
    "1, 2, 3, 4, 5, 6, 7, 8,",
    "A, B, C, D, E, F, G,",
    "def is_prime(n):\n    \"\"\"Return True if n is a prime number.\"\"\"\n",
    "class Stack:\n    def __init__(self):\n",
    "2, 4, 6, 8, 10, 12,",
    "The capital of France is",
    "def fibonacci(n):\n",
]
CHAT_CANDIDATES = [
    "Write a JavaScript function that adds two numbers.",
    "Write the even numbers from 2 to 60, separated by commas.",
    "Write a C function that returns the maximum of two integers.",
    "Write a JavaScript function that multiplies two numbers.",
    "Print hello world in C.",
]
WANT = {"plain": 5, "chat": 4}


def tokenizer_vectors(vocab) -> list[dict]:
    return [{"text": text, "ids_plain": vocab.tokenize(text.encode(), add_bos=False, special=False),
             "ids_special": vocab.tokenize(text.encode(), add_bos=False, special=True)}
            for text in TOKENIZER_TEXTS]


def teacher_forced(llm) -> dict:
    ids = llm.tokenize(TEACHER_TEXT.encode(), add_bos=False, special=False)[:TEACHER_POSITIONS]
    assert len(ids) == TEACHER_POSITIONS, len(ids)
    logits = llama_logits(llm, ids)
    top = np.argsort(-logits, axis=1)[:, :TOP_LOGITS]
    return {"ids": ids, "argmax": logits.argmax(axis=1).tolist(),
            "margin": np.round(top2_margin(logits), 4).tolist(),
            "top_ids": top.tolist(),
            "top_logits": np.round(np.take_along_axis(logits, top, axis=1), 4).tolist()}


def greedy_cases(llm, tokenizer) -> list[dict]:
    cases = []
    for kind, candidates in (("plain", PLAIN_CANDIDATES), ("chat", CHAT_CANDIDATES)):
        kept = 0
        for text in candidates:
            messages = [{"role": "user", "content": text}] if kind == "chat" else None
            prompt = tokenizer.apply_chat_template(messages) if messages else text
            prompt_ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            ids, margins = llama_greedy(llm, prompt_ids, GREEDY_TOKENS)
            clear = margins.min() >= GREEDY_MARGIN
            print(f"{kind:5} min margin {margins.min():6.3f} {'kept' if clear else 'dropped':7} "
                  f"{text[:40]!r} -> {llm.detokenize(ids).decode(errors='replace')[:60]!r}")
            if clear and kept < WANT[kind]:
                kept += 1
                cases.append({"kind": kind, "messages": messages, "prompt": prompt,
                              "prompt_ids": prompt_ids, "ids": ids.tolist(),
                              "margins": np.round(margins, 4).tolist()})
    return cases


def one_item_a_line(data) -> str:
    """JSON with one list item or one dict key a line: reviewable diffs, no id a line."""
    dump = functools.partial(json.dumps, ensure_ascii=False)
    if isinstance(data, list):
        return "[\n" + ",\n".join(map(dump, data)) + "\n]"
    return "{\n" + ",\n".join(f"{dump(k)}: {dump(v)}" for k, v in data.items()) + "\n}"


def write(name: str, data) -> None:
    path = GOLDEN / name
    path.write_text(one_item_a_line(data) + "\n", encoding="utf-8")
    print("wrote", path)


def main() -> None:
    path = str(real_path("qwen2.5-coder-0.5b"))
    vocab = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    write("tokens.json", tokenizer_vectors(vocab))
    vocab.close()
    llm = open_llama(path)
    try:
        write("teacher_forced.json", {"text": TEACHER_TEXT, "n_ctx": CTX, **teacher_forced(llm)})
        write("greedy.json", greedy_cases(llm, orcd.tokenizer.load(path)))
    finally:
        llm.close()


if __name__ == "__main__":
    main()
