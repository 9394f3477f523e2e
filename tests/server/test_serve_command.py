"""`orcd serve` options: defaults, ORCD_* environment variables, and start-up failures."""
import json
import os
import socket
import subprocess
import sys

import pytest

from orcd.cli import build_parser


def parse(*argv):
    return build_parser().parse_args(["serve", *argv])


def test_defaults():
    args = parse()
    assert (args.host, args.port, args.gpu_device, args.device) == ("127.0.0.1", 8080, 0, "cuda")
    assert (args.max_tokens_out, args.inference_timeout_sec, args.ctx) == (2048, 300.0, None)
    assert args.model is None and args.worker_id is None and args.log_prompts is False


def test_environment_variables(monkeypatch):
    for name, value in {"PORT": "9001", "DEVICE": "cpu", "CTX": "512", "LOG_PROMPTS": "1",
                        "WORKER_ID": "w-7", "INFERENCE_TIMEOUT_SEC": "2.5"}.items():
        monkeypatch.setenv(f"ORCD_{name}", value)
    args = parse()
    assert (args.port, args.device, args.ctx, args.log_prompts) == (9001, "cpu", 512, True)
    assert (args.worker_id, args.inference_timeout_sec) == ("w-7", 2.5)
    assert parse("--port", "9002").port == 9002  # the command line wins


def serve(*argv):
    return subprocess.run([sys.executable, "-m", "orcd.cli", "serve", "--device", "cpu", *argv],
                          capture_output=True, text=True, timeout=120)


def failure_line(run) -> tuple[str, dict]:
    assert run.returncode == 1, run.stderr
    plain = [line for line in run.stderr.splitlines() if not line.startswith("{")]
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert len(plain) == 1, run.stderr
    return plain[0], events[-1]


def test_a_file_that_is_not_gguf_fails_with_one_line(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    line, event = failure_line(serve("--model", str(bad), "--port", "0"))
    assert line.startswith("orcd serve: MODEL_LOAD_FAILED:") and str(bad) in line
    assert (event["event"], event["code"]) == ("error", "MODEL_LOAD_FAILED")


def test_a_taken_port_fails_before_loading(tiny_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line, event = failure_line(serve("--model", str(tiny_model), "--port", str(port)))
    assert f"127.0.0.1:{port}" in line and "--port" in line
    assert event["event"] == "error"


def test_no_gpu_names_device_cpu(tiny_model):
    from orcd import _cuda
    if _cuda.device_count() > 0:
        pytest.skip("this machine has a GPU: the start-up failure without one cannot happen")
    run = subprocess.run([sys.executable, "-m", "orcd.cli", "serve", "--device", "cuda", "--model",
                          str(tiny_model), "--port", "0"], capture_output=True, text=True, timeout=120)
    line, _ = failure_line(run)
    assert "--device cpu" in line


def test_prompt_cache_event_loop_and_trace_options(monkeypatch):
    args = parse()
    assert (args.no_prompt_cache, args.event_loop, args.trace) == (False, "uvloop", False)
    for name, value in {"NO_PROMPT_CACHE": "1", "EVENT_LOOP": "asyncio", "TRACE": "yes"}.items():
        monkeypatch.setenv(f"ORCD_{name}", value)
    args = parse()
    assert (args.no_prompt_cache, args.event_loop, args.trace) == (True, "asyncio", True)


def test_the_standard_library_event_loop_serves_too(tiny_model):
    import httpx

    from orcd.bench.http_client import started_worker
    with started_worker(str(tiny_model), "cpu", "--event-loop", "asyncio") as (server, _):
        assert httpx.get(f"{server.url}/health").json()["status"] == "healthy"
        assert server.complete({"prompt": "Hi", "max_tokens": 3, "temperature": 0}).finish_reason


@pytest.mark.gpu
def test_running_out_of_vram_during_the_load_exits_with_insufficient_vram(tiny_model):
    """ORCD_FAULT=alloc:1 fails the load's first device allocation: a start-up failure, so
    SPEC §3's start-up code, not the job code VRAM_OOM."""
    run = subprocess.run([sys.executable, "-m", "orcd.cli", "serve", "--device", "cuda", "--model",
                          str(tiny_model), "--port", "0"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ORCD_FAULT": "alloc:1"})
    line, event = failure_line(run)
    assert line.startswith("orcd serve: INSUFFICIENT_VRAM:") and "ORCD_FAULT" in line, line
    assert (event["event"], event["code"]) == ("error", "INSUFFICIENT_VRAM")


def test_responses_do_not_name_the_server_software():
    from orcd.logging import Narrator
    from orcd.server.run import ServeOptions, hypercorn_config
    config = hypercorn_config(ServeOptions(model="m.gguf", worker_id="w"), Narrator("w", "m", 0))
    assert [name for name, _ in config.response_headers("h11")] == [b"date"]


def test_the_worker_loads_its_kernels_with_the_model_unless_told_otherwise(monkeypatch):
    from orcd.server import run
    monkeypatch.delenv("CUDA_MODULE_LOADING", raising=False)
    run.load_kernels_with_the_model()
    assert os.environ["CUDA_MODULE_LOADING"] == "EAGER"
    monkeypatch.setenv("CUDA_MODULE_LOADING", "LAZY")
    run.load_kernels_with_the_model()
    assert os.environ["CUDA_MODULE_LOADING"] == "LAZY"
