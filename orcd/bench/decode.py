"""`orcd bench decode`: decode and prefill tokens/s and load time of one model file, on orcd's
CUDA engine and, when llama-cpp-python is importable, on llama.cpp (all layers on the GPU),
with the ratios orcd / llama.cpp (SPEC §10).

decode: 128 greedy tokens after a 32-token prompt, (tokens - 1) / time from the first to the
last token, also as a fraction of the bandwidth limit (device copy bandwidth / weight bytes
read per token) and as microseconds per layer; with --depth D the same after a D-token prompt
(llama-bench -d D). prefill: prompts of 32, 512 and 4,096 tokens (--prefill-tokens; llama-bench
-p 32,512,4096), each with its time to first token (prefill + first sampled id), size / that
time, and the TFLOP/s it achieves (prefill_flops); `prefill_tokens_per_s` is the 512-token
figure. load: file to ready.
Prompts are random ids of the vocabulary (no stop ids), the same for both engines, no two
sharing a prefix (llama-cpp-python would reuse it). Each figure is the best of --repeats runs.
"""
from __future__ import annotations

import argparse
import json
import math
import threading
import time
from pathlib import Path

import numpy as np

from orcd.commands import env_default, flag
from orcd.engine.sampling import SamplingParams

HELP = "decode and prefill tokens/s and load time, against llama.cpp"
GREEDY = SamplingParams(temperature=0.0)
PREFILL_SIZES = [32, 512, 4096]
HEADLINE_PREFILL = 512  # prefill_tokens_per_s: llama-bench's pp512


def prefill_sizes(text: str) -> list[int]:
    """--prefill-tokens: one prompt size or a comma-separated list of them, each at least 1."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of prompt sizes: give whole numbers >= 1 separated by commas, "
            "e.g. 32,512,4096")
    return sorted(set(sizes))


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=env_default("--model"),
                        help="GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--gpu-device", type=int, default=env_default("--gpu-device", 0, int))
    parser.add_argument("--ctx", type=int, default=env_default("--ctx", 2048, int),
                        help="KV cache positions (at least the longest prompt + decode)")
    parser.add_argument("--prompt-tokens", type=int, default=32, help="prompt before decode")
    parser.add_argument("--decode-tokens", type=int, default=128, help="tokens decoded")
    parser.add_argument("--prefill-tokens", type=prefill_sizes, default=PREFILL_SIZES,
                        metavar="N[,N...]", help="prompt sizes of the prefill figures (default: 32,512,4096)")
    parser.add_argument("--depth", type=int, default=0,
                        help="also decode after a prompt of this many tokens (0: not)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best taken)")
    parser.add_argument("--no-llama-cpp", action="store_true", help="measure orcd only")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of a table")


def prompt(vocab: int, n: int, seed) -> list[int]:
    return [int(i) for i in np.random.default_rng(seed).integers(0, vocab, n)]


def timed_stream(tokens) -> tuple[float, float, int]:
    """(seconds to the first token, seconds from the first to the last, tokens) of a stream."""
    start = time.perf_counter()
    first = last = start
    count = 0
    for _ in tokens:
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return first - start, last - first, count


def decode_rate(run, vocab: int, prompt_tokens: int, decode_tokens: int, seed: int) -> float:
    _, span, n = timed_stream(run(prompt(vocab, prompt_tokens, seed), decode_tokens))
    return (n - 1) / span if span > 0 else 0.0


def headline(prefill: list[dict]) -> dict:
    """The prefill figure that stands for all: 512 tokens, else the largest size below, else
    the smallest."""
    below = [p for p in prefill if p["tokens"] <= HEADLINE_PREFILL]
    return below[-1] if below else prefill[0]


def figures(load_s: float, run, args, vocab: int, flops) -> dict:
    """The figures of one engine: `run(ids, n)` streams n greedy ids after the prompt ids,
    `flops(n)` is the work of a prefill of n tokens (prefill_flops)."""
    decode = deep = 0.0
    ttft = dict.fromkeys(args.prefill_tokens, math.inf)
    for r in range(args.repeats):
        decode = max(decode, decode_rate(run, vocab, args.prompt_tokens, args.decode_tokens, r))
        for n in args.prefill_tokens:
            first, _, _ = timed_stream(run(prompt(vocab, n, (100 + r, n)), 1))
            ttft[n] = min(ttft[n], first)
        if args.depth:
            deep = max(deep, decode_rate(run, vocab, args.depth, args.decode_tokens, 200 + r))
    prefill = [{"tokens": n, "tokens_per_s": n / t, "ttft_ms": t * 1e3, "tflops": flops(n) / t / 1e12}
               for n, t in ttft.items()]
    out = {"decode_tokens_per_s": decode, "prefill": prefill,
           "prefill_tokens_per_s": headline(prefill)["tokens_per_s"], "load_s": load_s}
    if args.depth:
        out["decode_at_depth_tokens_per_s"] = deep
    return out


def context_for(args) -> int:
    """--ctx, grown to hold the deepest prompt and its decode, and the longest prefill and its
    one sampled id."""
    return max(args.ctx, args.depth + args.decode_tokens + 1, max(args.prefill_tokens) + 1)


def measure_orcd(path: Path, args) -> dict:
    from orcd.engine.cuda import CudaEngine
    start = time.perf_counter()
    engine = CudaEngine(args.gpu_device)
    engine.load(path, context_for(args))
    load_s = time.perf_counter() - start

    def run(ids, n):
        return engine.generate(ids, GREEDY, n, set(), threading.Event())
    try:
        out = figures(load_s, run, args, engine.config.vocab_size, lambda n: prefill_flops(path, n))
        out["vram_bytes_used"] = engine.health()["vram_bytes_used"]
        out["decode_us_per_layer"] = 1e6 / out["decode_tokens_per_s"] / engine.config.block_count
        return out
    finally:
        engine.close()


def measure_llama_cpp(path: Path, args) -> dict:
    import llama_cpp
    start = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_gpu_layers=-1, n_ctx=context_for(args),
                          n_batch=max(args.prefill_tokens), main_gpu=args.gpu_device, verbose=False)
    load_s = time.perf_counter() - start

    def run(ids, n):
        for i, token in enumerate(llm.generate(ids, temp=0.0, top_k=1, reset=True)):
            yield token
            if i + 1 == n:
                return
    return figures(load_s, run, args, llm.n_vocab(), lambda n: prefill_flops(path, n))


def token_share(cfg, name: str) -> float:
    """The share of tensor `name` one token uses: of a mixture of experts (`*_exps`) the
    experts it is routed to, expert_used_count / expert_count; of any other tensor all of it."""
    return cfg.expert_used_count / cfg.expert_count if "_exps" in name and cfg.expert_count else 1.0


def weight_bytes_per_token(path: Path) -> int:
    """Every matrix is read once per token; of token_embd only one row, unless it is also the
    output matrix (tied); of a mixture of experts (`*_exps`) only the experts a token uses."""
    import orcd.gguf
    from orcd.models import describe
    with orcd.gguf.open(path) as f:
        cfg = describe(f)
        total = sum(t.nbytes * token_share(cfg, name) for name, t in f.tensors.items())
        tied = "output.weight" not in f.tensors
        return int(total if tied else total - f.tensors["token_embd.weight"].nbytes)


def causal_pairs(n: int, window: int) -> int:
    """(query, key) pairs of causal attention over n tokens, each query seeing at most
    `window` keys, itself included (0: all)."""
    w = min(window, n) if window else n
    return w * (w + 1) // 2 + (n - w) * w


def prefill_flops(path: Path, n: int) -> float:
    """Floating-point operations of a prefill of n tokens that computes one row of logits:
    2·n·(elements of every layer matrix, blk.*.weight of two or more dimensions; of a mixture
    of experts, `*_exps`, the share expert_used_count / expert_count a token uses)
    + 2·d_model·vocab for the last token's logits
    + attention's QKᵀ and PV, 2·heads·(key_length + value_length) per causal (query, key) pair
    of each layer, n(n+1)/2 pairs (fewer where a sliding window bounds a layer's keys).
    Norms, biases, RoPE and the softmax are left out."""
    import orcd.gguf
    from orcd.models import describe
    with orcd.gguf.open(path) as f:
        cfg = describe(f)
        matrices = sum(math.prod(t.shape) * token_share(cfg, name) for name, t in f.tensors.items()
                       if name.startswith("blk.") and name.endswith(".weight") and len(t.shape) >= 2)
    pairs = sum(causal_pairs(n, cfg.sliding_window if cfg.uses_sliding_window(layer) else 0)
                for layer in range(cfg.block_count))
    attention = 2 * cfg.head_count * (cfg.key_length + cfg.value_length) * pairs
    return 2 * n * matrices + 2 * cfg.embedding_length * cfg.vocab_size + attention


def bandwidth_limit(path: Path) -> dict:
    from orcd import _cuda
    copy_bw, per_token = _cuda.copy_bandwidth(), weight_bytes_per_token(path)
    return {"copy_bandwidth": copy_bw, "weight_bytes_per_token": per_token,
            "decode_tokens_per_s_limit": copy_bw / per_token}


def ratios(orcd: dict, ref: dict) -> dict:
    return {"decode": orcd["decode_tokens_per_s"] / ref["decode_tokens_per_s"],
            "prefill": orcd["prefill_tokens_per_s"] / ref["prefill_tokens_per_s"],
            "prefill_by_size": [{"tokens": a["tokens"], "tokens_per_s": a["tokens_per_s"] / b["tokens_per_s"]}
                                for a, b in zip(orcd["prefill"], ref["prefill"])],
            "load": ref["load_s"] / orcd["load_s"]}  # > 1: orcd loads faster


def llama_cpp_or_reason(path: Path, args):
    if args.no_llama_cpp:
        return None, "--no-llama-cpp"
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        return None, f"llama-cpp-python is not importable ({e})"
    return measure_llama_cpp(path, args), None


def table(report: dict) -> str:
    b = report["bandwidth"]
    lines = [f"model: {report['model']}",
             f"bandwidth limit: {b['decode_tokens_per_s_limit']:.0f} tok/s "
             f"({b['weight_bytes_per_token'] / 2**20:.1f} MiB/token at "
             f"{b['copy_bandwidth'] / 1e12:.2f} TB/s); orcd decode at "
             f"{100 * report['orcd']['decode_fraction_of_limit']:.1f} %, "
             f"{report['orcd']['decode_us_per_layer']:.1f} us per layer"]
    for name in ("orcd", "llama_cpp"):
        r = report[name]
        if r is None:
            lines.append(f"{name:10} skipped: {report['llama_cpp_skipped']}")
            continue
        lines.append(f"{name:10} decode {r['decode_tokens_per_s']:9.1f} tok/s   load {r['load_s']:6.2f} s")
        if "decode_at_depth_tokens_per_s" in r:
            lines.append(f"{'':10} decode at depth {report['depth']}: "
                         f"{r['decode_at_depth_tokens_per_s']:9.1f} tok/s")
        lines += [f"{'':10} prefill {p['tokens']:5,} tok {p['tokens_per_s']:12,.1f} tok/s   "
                  f"ttft {p['ttft_ms']:8.2f} ms {p['tflops']:7.1f} TFLOP/s" for p in r["prefill"]]
    if report["ratios"]:
        q = report["ratios"]
        lines.append(f"{'orcd/llama':10} decode {q['decode']:9.2f}x       load {q['load']:6.2f}x (faster > 1)")
        lines += [f"{'':10} prefill {p['tokens']:5,} tok {p['tokens_per_s']:12.2f}x" for p in q["prefill_by_size"]]
    return "\n".join(lines)


def run(args) -> int:
    if args.model:
        path = Path(args.model)
    else:
        from orcd.models import bundled_path
        path = bundled_path()
    orcd = measure_orcd(path, args)
    limit = bandwidth_limit(path)
    orcd["decode_fraction_of_limit"] = orcd["decode_tokens_per_s"] / limit["decode_tokens_per_s_limit"]
    ref, skipped = llama_cpp_or_reason(path, args)
    report = {"model": str(path), "decode_tokens": args.decode_tokens,
              "prompt_tokens": args.prompt_tokens, "prefill_tokens": args.prefill_tokens,
              "depth": args.depth,
              "bandwidth": limit, "orcd": orcd, "llama_cpp": ref, "llama_cpp_skipped": skipped,
              "ratios": ratios(orcd, ref) if ref else None}
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0
