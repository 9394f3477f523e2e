"""Writes golden_smollm2.json: token ids of llama.cpp's tokenizer on the bundled SmolLM2
file for 30 strings (half of them with special-token parsing).

    PYTHONPATH=. python3 tests/tokenizer/make_golden.py   # needs llama-cpp-python
"""
from __future__ import annotations

import json
from pathlib import Path

TEXTS = [
    "Hello world", " Hello world", "Hello, World! How are you?", "I'm sure you'll've done it.",
    "The year 2024 had 366 days; 12345678 is a number.", "3.14159 + 2.71828 = 5.85987",
    "def main():\n    print('hi')\n", "for (int i = 0; i < 10; ++i) { x[i] = i * 2; }",
    "   leading spaces and trailing   ", "tabs\tand\nnewlines\r\nand\r\n\r\nmore",
    "naïve café résumé Ærøskøbing", "Привет, мир! Как дела?", "你好，世界！今天天气很好。",
    "こんにちは世界、カタカナ", "مرحبا بالعالم", "नमस्ते दुनिया", "👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🦙",
    "e\u0301 a\u0308 Z\u0351\u036b", "supercalifragilisticexpialidocious" * 3, "a" * 100,
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are SmolLM.<|im_end|>\n", "text <|endoftext|> more text",
    "<repo_name>orcd<file_sep>main.py\nimport os", "no space<|im_end|><|im_end|>between",
    "<|im_start|>", "<|im_end|>", "<|im_start near miss |>", "'S 'T 'RE 'VE 'M 'LL 'D",
    "https://example.com/path?q=1&r=two#frag",
]


def main() -> None:
    import llama_cpp

    from orcd.models import bundled_path
    path = bundled_path()
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    cases = []
    for i, text in enumerate(TEXTS):
        parse_special = "<" in text and i % 2 == 0 or text.startswith("<|im_")
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=parse_special)
        cases.append({"text": text, "parse_special": parse_special, "ids": ids})
    out = Path(__file__).with_name("golden_smollm2.json")
    out.write_text(json.dumps({"model": path.name, "llama_cpp_python": llama_cpp.__version__,
                               "cases": cases}, ensure_ascii=False, indent=1) + "\n",
                   encoding="utf-8")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
