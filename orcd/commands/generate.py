"""orcd generate: one prompt, the generated text streamed to stdout (SPEC §1)."""
from __future__ import annotations

import argparse
import secrets
import sys
import threading

from orcd.commands import env_default, flag

HELP = "generate text for one prompt and stream it to stdout"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", help="the prompt text (special-token text such as <|im_start|> is read "
                                  "as that token, as the server reads it)")
    p.add_argument("--model", metavar="PATH", default=env_default("--model"),
                   help="GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--device", choices=("cuda", "cpu"), default=env_default("--device", "cuda"),
                   help="cuda (default) or cpu: the slow NumPy reference engine")
    p.add_argument("--gpu-device", metavar="N", type=int, default=env_default("--gpu-device", 0, int),
                   help="CUDA device index (default 0)")
    p.add_argument("--ctx", metavar="N", type=int, default=env_default("--ctx", None, int),
                   help="context length in tokens (default: min(model context, 8192))")
    p.add_argument("--tokenizer-json", metavar="PATH", default=env_default("--tokenizer-json"),
                   help="use this tokenizer.json (the hf-json backend) instead of the GGUF vocabulary")
    p.add_argument("--chat", action="store_true", default=env_default("--chat", False, flag),
                   help="wrap the prompt as one user message in the model's chat template")
    p.add_argument("--max-tokens", metavar="N", type=int, default=env_default("--max-tokens", 256, int),
                   help="most tokens to generate (default 256)")
    p.add_argument("--stop", metavar="TEXT", action="append", default=None,
                   help="end the text before this string; may be repeated")
    sampling = p.add_argument_group("sampling (as the /execute fields of the same names)")
    sampling.add_argument("--temperature", type=float, default=env_default("--temperature", 1.0, float),
                          help="0..2; 0 = greedy (default 1.0)")
    sampling.add_argument("--top-p", type=float, default=env_default("--top-p", 1.0, float),
                          help="(0, 1]; 1 = off (default)")
    sampling.add_argument("--top-k", type=int, default=env_default("--top-k", 0, int),
                          help="0..vocab; 0 = off (default)")
    sampling.add_argument("--min-p", type=float, default=env_default("--min-p", 0.0, float),
                          help="0..1; 0 = off (default)")
    sampling.add_argument("--repetition-penalty", type=float,
                          default=env_default("--repetition-penalty", 1.0, float),
                          help="(0, 2]; 1 = off (default)")
    sampling.add_argument("--seed", type=int, default=env_default("--seed", None, int),
                          help="uint64; the same seed replays the same text (default: random)")


def run(args: argparse.Namespace) -> int:
    from orcd import _cuda

    if args.device == "cuda" and _cuda.device_count() == 0:
        print("orcd generate: no NVIDIA GPU is visible (CUDA reports 0 devices); "
              "run with --device cpu for the NumPy reference engine", file=sys.stderr)
        return 1
    from orcd.engine import create_engine
    from orcd.engine.job import run_job
    from orcd.engine.sampling import SamplingParams
    from orcd.errors import InvalidRequest
    from orcd.models import bundled_path

    if args.max_tokens < 1:
        raise InvalidRequest(f"--max-tokens must be at least 1, got {args.max_tokens}")
    engine = create_engine(args.device, args.gpu_device)
    engine.load(args.model or bundled_path(), args.ctx, tokenizer_json=args.tokenizer_json)
    try:
        params = SamplingParams(
            temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, min_p=args.min_p,
            repetition_penalty=args.repetition_penalty,
            seed=secrets.randbits(64) if args.seed is None else args.seed,
        ).validate(engine.tokenizer.vocab_size)
        prompt = args.prompt
        if args.chat:
            prompt = engine.tokenizer.apply_chat_template([{"role": "user", "content": prompt}])
        for kind, data in run_job(engine, engine.tokenizer, prompt, params, args.max_tokens,
                                  args.stop or [], threading.Event()):
            if kind == "token":
                sys.stdout.write(data["t"])
                sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        engine.close()
    return 0
