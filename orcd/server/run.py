"""`orcd serve` end to end: bind the port, load the model on the engine thread, announce
readiness, serve through hypercorn, and stop cleanly on /shutdown, SIGTERM or SIGINT."""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import json
import logging
import os
import signal
import sys
import time
import urllib.request

import uvloop
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config
from hypercorn.utils import wrap_app

import orcd.gguf
from orcd.engine.base import context_for
from orcd.errors import OrcdError
from orcd.logging import Narrator, narrate_everything
from orcd.models import ModelConfig, config_from_metadata
from orcd.server import http_layer
from orcd.server.app import create_app
from orcd.server.state import ServerState
from orcd.server.trace import traced

CALLBACK_TIMEOUT_SEC = 5.0
# The engine thread runs Python between decode steps (sampling glue, detokenization); with the
# default 5 ms GIL switch interval the event loop could wait that long to answer /health.
GIL_SWITCH_INTERVAL_SEC = 0.0005
GRACEFUL_SEC = 1.0
# CUDA loads a kernel's code at its first launch by default (lazy loading): a worker's first
# job then paid for it (H200, Qwen2.5-0.5B shape, a fresh engine's first 20-token job: 13.3 ms
# lazy, 4.8 ms eager; the load 0.19 -> 0.26 s). The worker loads them with the model instead,
# unless its environment says otherwise.
MODULE_LOADING = ("CUDA_MODULE_LOADING", "EAGER")


def load_kernels_with_the_model() -> None:
    """Read by the CUDA runtime when the engine thread first calls it (load_engine)."""
    os.environ.setdefault(*MODULE_LOADING)


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    model: str
    worker_id: str
    host: str = "127.0.0.1"
    port: int = 8080
    gpu_device: int = 0
    callback_url: str | None = None
    ctx: int | None = None
    max_tokens_out: int = 2048
    inference_timeout_sec: float = 300.0
    residency_check_sec: float = 60.0
    queue_depth: int = 16
    queue_timeout_sec: float = 300.0
    tokenizer_json: str | None = None
    device: str = "cuda"
    log_prompts: bool = False
    trace: bool = False
    event_loop: str = "uvloop"
    prompt_cache: bool = True
    api_key: str | None = dataclasses.field(default=None, repr=False)  # a secret: never in a repr

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def serve(options: ServeOptions, narrator: Narrator) -> int:
    """Run the worker until it is told to stop; OrcdError/OSError for start-up failures."""
    narrator.event("startup", f"orcd worker starting on {options.uri} with the {options.device} engine",
                   device=options.device, uri=options.uri)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SEC)
    load_kernels_with_the_model()
    narrate_everything(narrator)
    if options.event_loop == "uvloop":
        # libuv's loop and transports: fewer Python frames per socket write and per wake-up
        # from the engine thread, and no GIL released and retaken around each send().
        return uvloop.run(_serve(options, narrator))
    return asyncio.run(_serve(options, narrator))


async def _serve(options: ServeOptions, narrator: Narrator) -> int:
    config = hypercorn_config(options, narrator)
    sockets = bind(config, options)
    ctx = context_for(model_config(options.model), options.ctx)
    engine_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="orcd-engine")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_while_loading, narrator, sig.name)
    engine = await loop.run_in_executor(engine_thread, load_engine, options, ctx, narrator)
    state = ServerState(engine, narrator, engine_thread, worker_id=options.worker_id,
                        gpu_device=options.gpu_device, ctx=ctx,
                        max_tokens_out=options.max_tokens_out, timeout_sec=options.inference_timeout_sec,
                        residency_check_sec=options.residency_check_sec, prompt_cache=options.prompt_cache,
                        queue_depth=options.queue_depth, queue_timeout_sec=options.queue_timeout_sec)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, state.begin_shutdown, sig.name)
    http_layer.install(state)
    # What the imports and the load made lives as long as the worker; a full collection would
    # walk all of it in the middle of a request (12-30 ms with SmolLM2 on the CPU engine, 60,000
    # objects; 0.1 ms after this).
    gc.freeze()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)  # connections queue from here on, so "ready" is true now
    narrator.event("ready", f"serving {state.model} on {options.uri}", uri=options.uri,
                   vram_bytes=state.health["vram_bytes_used"])
    background = [loop.create_task(state.watch_engine())]
    if options.callback_url:
        background.append(loop.create_task(notify_ready(options, state)))
    app = create_app(state, options.api_key)
    if options.trace:
        app = traced(app, narrator)
    await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, sockets=sockets,
                       shutdown_trigger=state.stopped.wait)
    for task in background:
        task.cancel()
    narrator.event("shutdown", "stopped; exiting 0")
    if not state.runner.drained:
        # The engine thread is stuck in a step that cannot be interrupted; the OS frees its memory.
        sys.stderr.flush()
        os._exit(0)
    return 0


def stop_while_loading(narrator: Narrator, why: str) -> None:
    """A load cannot be interrupted, and nothing is served yet: leave at once; the OS frees
    the memory the half-loaded model holds."""
    narrator.event("shutdown", f"{why} during the model load; exiting 0")
    sys.stderr.flush()
    os._exit(0)


def hypercorn_config(options: ServeOptions, narrator: Narrator) -> Config:
    config = Config()
    config.bind = [f"{options.host}:{options.port}"]
    config.accesslog = None
    # h11 builds and checks every header of every response, a token stream's or /health's;
    # this one only advertised the server's software
    config.include_server_header = False
    config.errorlog = logging.getLogger("hypercorn.error")  # narrated: narrate_everything
    config.graceful_timeout = GRACEFUL_SEC
    return config


def bind(config: Config, options: ServeOptions):
    """Take the port before the (slow) load, so a busy port fails at once."""
    try:
        return config.create_sockets()
    except OSError as e:
        raise OSError(f"cannot listen on {options.host}:{options.port}: {e.strerror}; "
                      f"is another worker there? choose another --port") from None


def model_config(path: str) -> ModelConfig:
    with orcd.gguf.open(path) as f:
        return config_from_metadata(f.metadata)


def load_engine(options: ServeOptions, ctx: int, narrator: Narrator):
    """On the engine thread, so the device chosen there is the one every job runs on."""
    from orcd.engine import create_engine  # with no GPU, CudaEngine's error names --device cpu
    narrator.event("model_load_start", f"loading {options.model} with context {ctx}", ctx=ctx)
    started = time.monotonic()
    engine = create_engine(options.device, options.gpu_device)
    engine.load(options.model, ctx, narrator.load_progress, tokenizer_json=options.tokenizer_json)
    health = engine.health()
    narrator.event("model_load_complete", f"model loaded in {time.monotonic() - started:.2f} s",
                   seconds=round(time.monotonic() - started, 3), arch=health.get("arch"),
                   vram_bytes=health.get("vram_bytes_used"))
    return engine


async def notify_ready(options: ServeOptions, state: ServerState) -> None:
    """POST the ready notice; a failure is narrated, never fatal."""
    notice = {"worker_id": options.worker_id, "uri": options.uri, "model": state.model,
              "vram_bytes": state.health["vram_bytes_used"]}
    try:
        await asyncio.get_running_loop().run_in_executor(None, post_json, options.callback_url, notice)
    except (OSError, ValueError) as e:
        state.narrator.error(f"ready notice to {options.callback_url} failed: {e}",
                             code="INTERNAL", level="warning")


def post_json(url: str, body: dict) -> None:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=CALLBACK_TIMEOUT_SEC):
        pass


def start_failure(narrator: Narrator, error: Exception) -> int:
    """One clear line for the person, one `error` event for the machine; exit status 1."""
    if isinstance(error, OrcdError):
        code, text = error.code, str(error)
    elif isinstance(error, OSError):
        code, text = ("MODEL_LOAD_FAILED" if isinstance(error, FileNotFoundError) else "INTERNAL"), str(error)
    else:
        code, text = "INTERNAL", f"{type(error).__name__}: {error}"
    narrator.error(f"start-up failed: {text}", code=code, level="critical")
    print(f"orcd serve: {code}: {text}", file=sys.stderr)
    return 1

