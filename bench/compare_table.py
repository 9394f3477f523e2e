"""bench/compare_llama_cpp.sh's output as one markdown table: per file, orcd's decode and
prefill figures beside llama-bench's from the same run, with their ratios.

    python3 bench/compare_table.py COMPARE_OUTPUT.txt

compare_llama_cpp.sh prints, per file, a "== FILE" line, `orcd bench decode`'s table and
llama-bench's markdown rows; this pairs orcd's decode with llama-bench's tg128, its decode at
depth D with "tg128 @ dD", and its prefill of N tokens with ppN. A figure one side lacks
shows as "-".
"""
from __future__ import annotations

import argparse
import pathlib
import re
from dataclasses import dataclass, field

DECODE = re.compile(r"^orcd\s+decode\s+([\d,.]+) tok/s")
DEPTH = re.compile(r"^\s+decode at depth (\d+):\s+([\d,.]+) tok/s")
PREFILL = re.compile(r"^\s+prefill\s+([\d,]+) tok\s+([\d,.]+) tok/s")
LLAMA_ROW = re.compile(r"^\|.*\|\s*((?:pp|tg)\d+(?: @ d\d+)?)\s*\|\s*([\d.]+) ± [\d.]+\s*\|$")


def number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass
class Run:
    """One file's figures: orcd's and llama-bench's, keyed as llama-bench names its tests."""
    model: str
    orcd: dict[str, float] = field(default_factory=dict)
    llama: dict[str, float] = field(default_factory=dict)


def parse(text: str) -> list[Run]:
    runs: list[Run] = []
    for line in text.splitlines():
        if line.startswith("== "):
            runs.append(Run(pathlib.Path(line[3:].strip()).name))
        elif not runs:
            continue
        elif m := DECODE.match(line):
            runs[-1].orcd["tg128"] = number(m[1])
        elif m := DEPTH.match(line):
            runs[-1].orcd[f"tg128 @ d{m[1]}"] = number(m[2])
        elif m := PREFILL.match(line):
            runs[-1].orcd[f"pp{number(m[1]):.0f}"] = number(m[2])
        elif m := LLAMA_ROW.match(line):
            runs[-1].llama[m[1]] = float(m[2])
    return runs


def cell(run: Run, test: str) -> str:
    ours, theirs = run.orcd.get(test), run.llama.get(test)
    if ours is None:
        return "-"
    if theirs is None:
        return f"{ours:,.1f} (-)"
    return f"{ours:,.1f} ({theirs:,.1f}) {ours / theirs:.2f}x"


def order(test: str) -> tuple:
    """Decode first, then decode at depth, then prefill by size."""
    return test.startswith("pp"), "@" in test, int(re.search(r"\d+", test)[0])


def heading(test: str) -> str:
    if test.startswith("pp"):
        return f"prefill {test[2:]}"
    return f"decode at depth {test.split('@ d')[1]}" if "@" in test else "decode"


def table(text: str) -> str:
    runs = parse(text)
    tests = sorted({t for run in runs for t in run.orcd}, key=order)
    lines = ["| file | " + " | ".join(f"{heading(t)} t/s (llama.cpp) ratio" for t in tests) + " |",
             "|---" * (len(tests) + 1) + "|"]
    for run in runs:
        lines.append(f"| {run.model} | " + " | ".join(cell(run, t) for t in tests) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="what compare_llama_cpp.sh printed")
    print(table(pathlib.Path(parser.parse_args().output).read_text()))


if __name__ == "__main__":
    main()
