"""orcd inspect: what a GGUF model is and what serving it would take."""
from __future__ import annotations

import collections
import json

import orcd.gguf
from orcd.commands import env_default, flag
from orcd.engine.base import DEFAULT_CTX_CAP, context_for
from orcd.models import describe, parameter_count, vram_estimate

HELP = "describe a GGUF model: architecture, parameters, quant mix, tokenizer, context, VRAM"
TOKENIZER_KINDS = {"gpt2": "gguf-bpe", "llama": "gguf-spm"}
MIB = 1 << 20


def add_arguments(parser) -> None:
    parser.add_argument("path", metavar="PATH", help="the GGUF model file")
    parser.add_argument("--json", action="store_true", default=env_default("--json", False, flag),
                        help="print one JSON object instead of text")
    parser.add_argument("--ctx", type=int, default=env_default("--ctx", None, int),
                        help=f"context length of the VRAM estimate (default: min(model context, {DEFAULT_CTX_CAP}))")


def quant_mix(tensors) -> dict[str, dict]:
    """type name -> {"tensors": count, "bytes": total}, most bytes first."""
    mix = collections.defaultdict(lambda: {"tensors": 0, "bytes": 0})
    for t in tensors.values():
        mix[t.ggml_type.name]["tensors"] += 1
        mix[t.ggml_type.name]["bytes"] += t.nbytes
    return dict(sorted(mix.items(), key=lambda kv: -kv[1]["bytes"]))


def tokenizer_kind(metadata: dict) -> str:
    model = metadata.get("tokenizer.ggml.model")
    return TOKENIZER_KINDS.get(model, f"unsupported ({model})")


def report(path: str, ctx: int | None) -> dict:
    with orcd.gguf.open(path) as f:
        cfg = describe(f)
        mix = quant_mix(f.tensors)
        kind = tokenizer_kind(f.metadata)
        pre = f.metadata.get("tokenizer.ggml.pre")
    ctx = context_for(cfg, ctx)
    vram = vram_estimate(cfg, sum(m["bytes"] for m in mix.values()), ctx)
    return {"path": path, "architecture": cfg.arch, "name": cfg.name,
            "parameters": parameter_count(cfg), "quant_mix": mix,
            "tokenizer": {"kind": kind, "pre": pre, "vocab_size": cfg.vocab_size},
            "context_length": cfg.context_length, "ctx": ctx,
            "vram_bytes": {"weights": vram.weights, "kv_cache": vram.kv_cache,
                           "scratch": vram.scratch, "total": vram.total}}


def text(r: dict) -> str:
    mix = ", ".join(f"{t} ×{m['tensors']} ({m['bytes'] / MIB:.1f} MiB)" for t, m in r["quant_mix"].items())
    tok = r["tokenizer"]
    v = {k: b / MIB for k, b in r["vram_bytes"].items()}
    return "\n".join([
        f"path          {r['path']}",
        f"architecture  {r['architecture']} ({r['name']})",
        f"parameters    {r['parameters']:,} ({r['parameters'] / 1e6:.1f} M)",
        f"quant mix     {mix}",
        f"tokenizer     {tok['kind']} (pre {tok['pre']}, {tok['vocab_size']:,} tokens)",
        f"context       {r['context_length']:,} (model maximum)",
        f"VRAM          {v['total']:.1f} MiB at ctx {r['ctx']:,} = weights {v['weights']:.1f} + "
        f"KV cache {v['kv_cache']:.1f} + scratch {v['scratch']:.1f}",
    ])


def run(args) -> int:
    if args.ctx is not None and args.ctx <= 0:
        raise SystemExit(f"orcd inspect: --ctx must be a positive number of tokens, got {args.ctx}")
    r = report(args.path, args.ctx)
    print(json.dumps(r, indent=2) if args.json else text(r))
    return 0
