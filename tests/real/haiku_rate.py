"""How reliably the haiku test (SPEC §11, features/qwen_coder.feature) passes: for each minute
word, the haiku prompt in the chat template, generated on the CPU or CUDA engine through the
job runner the server uses, at the feature's sampling parameters and one seed; prints every
haiku, then one machine-readable line: PASS RATE 59/60 device=cpu seed=29 temperature=0.2 top_p=0.9

    python3 tests/real/haiku_rate.py                  # all 60 minute words on the CPU engine
    python3 tests/real/haiku_rate.py --device cuda    # on the CUDA engine (GPU 0)
    python3 tests/real/haiku_rate.py --every 5 --offset 2   # a stratified subset: 2, 7, 12 ...
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "features" / "steps")]  # run as a script from anywhere
from haiku import SAMPLING, contains_word, haiku_messages, minute_word  # noqa: E402

from orcd.engine import create_engine  # noqa: E402
from orcd.engine.job import run_job  # noqa: E402
from orcd.engine.sampling import SamplingParams  # noqa: E402
from orcd.models import real_path  # noqa: E402


def haiku(engine, word: str, sampling: dict) -> str:
    params = {k: v for k, v in sampling.items() if k != "max_tokens"}
    prompt = engine.tokenizer.apply_chat_template(haiku_messages(word))
    events = run_job(engine, engine.tokenizer, prompt, SamplingParams(**params),
                     sampling["max_tokens"], [], threading.Event())
    return "".join(data["t"] for kind, data in events if kind == "token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="the NumPy engine or the CUDA engine on GPU 0")
    parser.add_argument("--ctx", type=int, default=512, help="context length the model is loaded with")
    parser.add_argument("--every", type=int, default=1, help="take every N-th minute")
    parser.add_argument("--offset", type=int, default=0, help="starting at this minute")
    parser.add_argument("--temperature", type=float, default=SAMPLING["temperature"],
                        help=f"instead of the feature's {SAMPLING['temperature']}")
    parser.add_argument("--seed", type=int, default=SAMPLING["seed"],
                        help=f"instead of the feature's {SAMPLING['seed']}")
    args = parser.parse_args()
    sampling = {**SAMPLING, "temperature": args.temperature, "seed": args.seed}
    engine = create_engine(args.device)
    engine.load(real_path("qwen2.5-coder-0.5b"), args.ctx)
    minutes = range(args.offset, 60, args.every)
    passed, start = 0, time.monotonic()
    for minute in minutes:
        word = minute_word(minute)
        text = haiku(engine, word, sampling)
        ok = contains_word(text, word)
        passed += ok
        print(f"{minute:2d} {word:13} {'PASS' if ok else 'FAIL'} {text!r}", flush=True)
    print(f"passed {passed}/{len(minutes)} ({100 * passed / len(minutes):.0f} %) at {sampling}, "
          f"{time.monotonic() - start:.0f} s")
    print(f"PASS RATE {passed}/{len(minutes)} device={args.device} seed={sampling['seed']} "
          f"temperature={sampling['temperature']} top_p={sampling['top_p']}")
    engine.close()


if __name__ == "__main__":
    main()
