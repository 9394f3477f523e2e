"""`orcd bench extras`: what a job's extras add to each decoded token, on one engine: logprobs
(0 and 20 alternatives: the kernels and the record copied with each id) and a JSON-schema
grammar mask (llguidance on the host, the bitmask uploaded before each sample), against the
plain greedy decode of the same prompt. Each figure is the best of --repeats runs.
"""
from __future__ import annotations

import json
import threading
import time

from orcd.commands import env_default, flag
from orcd.engine.grammar import Grammars, json_schema_grammar
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams
from orcd.testing.schemas import PERSON

HELP = "per-token cost of logprobs and of the grammar mask"
GREEDY = SamplingParams(temperature=0.0)
MODES = {"plain": (None, False), "logprobs 0": (0, False), "logprobs 20": (20, False),
         "json schema": (None, True), "json schema + logprobs 20": (20, True)}


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=env_default("--model"),
                        help="GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=env_default("--device", "cuda"))
    parser.add_argument("--gpu-device", type=int, default=env_default("--gpu-device", 0, int))
    parser.add_argument("--tokens", type=int, default=64, help="tokens decoded per run (a JSON answer may end first)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best taken)")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of a table")


def per_token_ms(engine, ids, args, top_n, grammar, grammars, ends) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(args.repeats):
        scoring = Scoring(top_n=top_n) if top_n is not None else None
        constraint = grammars.matcher(grammar) if grammar else None
        stamps = [time.perf_counter() for _ in engine.generate(ids, GREEDY, args.tokens, ends, threading.Event(),
                                                                scoring=scoring, constraint=constraint)]
        if len(stamps) > 1:
            best, count = min(best, (stamps[-1] - stamps[0]) / (len(stamps) - 1) * 1e3), len(stamps)
    return best, count


def run(args) -> int:
    from orcd.engine import create_engine
    from orcd.models import bundled_path
    engine = create_engine(args.device, args.gpu_device)
    engine.load(args.model or bundled_path(), 1024)
    tok = engine.tokenizer
    ids = tok.encode(tok.apply_chat_template([{"role": "user", "content": "Describe a person as JSON."}]),
                     parse_special=True)
    ends = set(tok.eot_ids) | ({tok.eos_id} if tok.eos_id is not None else set())
    grammars, grammar = Grammars(tok, engine.config.vocab_size), json_schema_grammar(PERSON, "schema")
    grammars.matcher(grammar)  # the vocabulary's llguidance tables, built once
    rows = {}
    for mode, (top_n, constrained) in MODES.items():
        ms, n = per_token_ms(engine, ids, args, top_n, grammar if constrained else None, grammars, ends)
        rows[mode] = {"ms_per_token": round(ms, 4), "tokens": n}
    plain = rows["plain"]["ms_per_token"]
    for row in rows.values():
        row["added_ms_per_token"] = round(row["ms_per_token"] - plain, 4)
    engine.close()
    if args.json:
        print(json.dumps({"device": args.device, "modes": rows}))
        return 0
    print(f"{'mode':28} {'tokens':>6} {'ms/token':>9} {'added':>8}")
    for mode, row in rows.items():
        print(f"{mode:28} {row['tokens']:>6} {row['ms_per_token']:>9.3f} {row['added_ms_per_token']:>+8.3f}")
    return 0
