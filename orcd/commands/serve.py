"""orcd serve: start the worker (SPEC §1, §2)."""
from __future__ import annotations

import argparse
import uuid

from orcd.commands import env_default, flag

HELP = "start the worker: load one GGUF model and serve generation over HTTP/SSE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", default=env_default("--model"),
                   help="GGUF file to serve (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--gpu-device", metavar="N", type=int, default=env_default("--gpu-device", 0, int),
                   help="CUDA device index (default 0)")
    p.add_argument("--host", default=env_default("--host", "127.0.0.1"),
                   help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=env_default("--port", 8080, int),
                   help="port to listen on (default 8080)")
    p.add_argument("--worker-id", metavar="UUID", default=env_default("--worker-id"),
                   help="this worker's id in logs, /health and the ready notice (default: a new UUID)")
    p.add_argument("--callback-url", metavar="URL", default=env_default("--callback-url"),
                   help="POST {worker_id, uri, model, vram_bytes} here once ready")
    p.add_argument("--ctx", metavar="N", type=int, default=env_default("--ctx", None, int),
                   help="context length in tokens (default: min(model context, 8192))")
    p.add_argument("--max-tokens-out", metavar="N", type=int,
                   default=env_default("--max-tokens-out", 2048, int),
                   help="most tokens one job may generate (default 2048)")
    p.add_argument("--inference-timeout-sec", metavar="S", type=float,
                   default=env_default("--inference-timeout-sec", 300.0, float),
                   help="a job running longer ends with INFERENCE_TIMEOUT (default 300)")
    p.add_argument("--queue-depth", metavar="N", type=int, default=env_default("--queue-depth", 16, int),
                   help="OpenAI requests that may wait for a busy worker; more get 503 (default 16; "
                        "/execute never waits)")
    p.add_argument("--queue-timeout-sec", metavar="S", type=float,
                   default=env_default("--queue-timeout-sec", 300.0, float),
                   help="a waiting OpenAI request gets 503 after this long (default 300)")
    p.add_argument("--residency-check-sec", metavar="S", type=float,
                   default=env_default("--residency-check-sec", 60.0, float),
                   help="check that every allocation is still in VRAM this often (default 60)")
    p.add_argument("--tokenizer-json", metavar="PATH", default=env_default("--tokenizer-json"),
                   help="use this tokenizer.json (the hf-json backend) instead of the GGUF vocabulary")
    p.add_argument("--device", choices=("cuda", "cpu"), default=env_default("--device", "cuda"),
                   help="cuda (default) or cpu: the slow NumPy reference engine, for development and CI")
    p.add_argument("--api-key", metavar="KEY", default=env_default("--api-key"),
                   help="require `Authorization: Bearer KEY` on every route but /health and /metrics "
                        "(401 UNAUTHORIZED otherwise); prefer ORCD_API_KEY: a command line is visible to others")
    p.add_argument("--log-prompts", action="store_true", default=env_default("--log-prompts", False, flag),
                   help="include prompts and generated text in the log (off: they may be private)")
    p.add_argument("--no-prompt-cache", action="store_true",
                   default=env_default("--no-prompt-cache", False, flag),
                   help="prefill every prompt whole (default: a job reuses the KV cache of the prefix "
                        "it shares with the previous job's prompt and output; a request can also "
                        "say cache_prompt: false)")
    p.add_argument("--event-loop", choices=("uvloop", "asyncio"),
                   default=env_default("--event-loop", "uvloop"),
                   help="the event loop under hypercorn (default uvloop; asyncio: the standard "
                        "library's)")
    p.add_argument("--trace", action="store_true", default=env_default("--trace", False, flag),
                   help="narrate, per job, when its first token passed each hand-off (debug; "
                        "`orcd bench server --trace` prints the breakdown)")


def run(args: argparse.Namespace) -> int:
    from orcd.logging import Narrator
    from orcd.models import bundled_path
    from orcd.server.run import ServeOptions, serve, start_failure

    worker_id = args.worker_id or str(uuid.uuid4())
    narrator = Narrator(worker_id, args.model or "bundled:SmolLM2-135M-Instruct", args.gpu_device,
                        log_prompts=args.log_prompts)
    try:
        model = args.model or str(bundled_path())
        narrator.model_ref = model
        options = ServeOptions(
            model=model, worker_id=worker_id, host=args.host, port=args.port,
            gpu_device=args.gpu_device, callback_url=args.callback_url, ctx=args.ctx,
            max_tokens_out=args.max_tokens_out, inference_timeout_sec=args.inference_timeout_sec,
            residency_check_sec=args.residency_check_sec, queue_depth=args.queue_depth,
            queue_timeout_sec=args.queue_timeout_sec,
            tokenizer_json=args.tokenizer_json, device=args.device, log_prompts=args.log_prompts,
            trace=args.trace, prompt_cache=not args.no_prompt_cache, event_loop=args.event_loop,
            api_key=args.api_key or None)
        return serve(options, narrator)
    except Exception as e:  # any start-up failure is one line and exit 1, never a traceback
        return start_failure(narrator, e)
