"""Steps that start workers and check health, logs, start-up failures and shutdown."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from behave import given, then, when

from orcd.testing.worker import STOP_TIMEOUT_SEC, Stream, WorkerProcess, free_port

TINY_MODELS = {"qwen2": "Q8_0", "phi3": "Q4_0", "gpt-oss": "MXFP4"}


def model_path(context, name: str) -> str:
    if name not in context.model_paths:
        if name == "smollm2":
            from orcd.models import bundled_path
            path = bundled_path()
        else:
            from orcd.testing.synth import write_model
            path = write_model(os.path.join(context.model_dir.name, f"{name}.gguf"), name,
                               preset="tiny", quant=TINY_MODELS[name])
        context.model_paths[name] = str(path)
    return context.model_paths[name]


def shared_worker(context, name: str, *extra: str) -> WorkerProcess:
    key = (name, extra)
    if key not in context.workers:
        context.workers[key] = WorkerProcess(model_path(context, name), context.device, *extra).wait_ready()
    return context.workers[key]


@given('a worker serving the "{name}" model')
def step_shared_worker(context, name):
    context.model_name = name
    context.worker = shared_worker(context, name)
    context.worker.wait_idle()


@given('a worker serving the "{name}" model with "{options}"')
def step_shared_worker_with(context, name, options):
    context.model_name = name
    context.worker = shared_worker(context, name, *options.split())
    context.worker.wait_idle()


@given('a fresh worker serving the "{name}" model')
def step_fresh_worker(context, name):
    context.model_name = name
    context.worker = WorkerProcess(model_path(context, name), context.device).wait_ready()
    context.workers[("fresh", id(context.worker))] = context.worker


@given('a worker serving the "{name}" model with the API key "{key}" in ORCD_API_KEY')
def step_keyed_worker(context, name, key):
    context.model_name = name
    if (name, "api-key", key) not in context.workers:
        context.workers[name, "api-key", key] = WorkerProcess(
            model_path(context, name), context.device, env={"ORCD_API_KEY": key}).wait_ready()
    context.worker = context.workers[name, "api-key", key]


@given('a fresh worker serving the "{name}" model with the API key "{key}" in ORCD_API_KEY')
def step_fresh_keyed_worker(context, name, key):
    context.model_name = name
    context.worker = WorkerProcess(model_path(context, name), context.device,
                                   env={"ORCD_API_KEY": key}).wait_ready()
    context.workers[("fresh", id(context.worker))] = context.worker


@when('I GET "{path}"')
def step_get(context, path):
    context.response = context.worker.http.get(path)


@then("the response status is {status:d}")
def step_status(context, status):
    assert context.response.status_code == status, (context.response.status_code, context.response.text)


@then("the health report has every field of the contract")
def step_health_fields(context):
    health = context.response.json()
    expected = {"status", "worker_id", "model", "arch", "resident", "quant_kind", "vram_bytes_used",
                "tokenizer_kind", "vocab_size", "context_length", "uptime_seconds", "busy",
                "gpu_device", "gpu_name", "sm", "cuda_runtime_version", "device"}
    assert expected <= set(health), expected - set(health)


@then('the health field "{field}" is {value}')
def step_health_field(context, field, value):
    got = context.response.json()[field]
    assert got == json.loads(value), (field, got)


@then("the health reports the engine's device")
def step_health_device(context):
    assert context.response.json()["device"] == context.device


@then("the log has the load progress events 0, 25, 50, 75 and 100 before ready")
def step_progress_events(context):
    events = context.worker.events()
    names = [e["event"] for e in events]
    percents = [e["percent"] for e in events if e["event"] == "model_load_progress"]
    assert percents == [0, 25, 50, 75, 100], percents
    assert names.index("model_load_start") < names.index("model_load_progress")
    assert names.index("model_load_complete") < names.index("ready"), names
    for e in events:
        assert {"ts", "level", "event", "worker_id", "model_ref", "gpu_device", "msg"} <= set(e), e


@then("the log has execute_start and execute_end for that job without its prompt")
def step_job_log(context):
    job_id = context.stream.events[0][1]["job_id"]
    mine = [e for e in context.worker.events() if e.get("job_id") == job_id]
    assert [e["event"] for e in mine][:1] == ["execute_start"], mine
    assert "execute_end" in [e["event"] for e in mine], mine
    assert all("prompt" not in e and "text" not in e for e in mine), mine


@when("I run orcd serve with {arguments}")
def step_run_serve(context, arguments):
    """`model:NAME` is that model's path, `{port}` the taken port, `NAME=VALUE` an environment variable."""
    argv, env = [], dict(os.environ)
    for a in arguments.split():
        if a.startswith("model:"):
            argv.append(model_path(context, a[len("model:"):]))
        elif "=" in a and a.split("=")[0].isupper():
            env.update([a.split("=", 1)])
        else:
            argv.append(a.replace("{port}", str(getattr(context, "busy_port", ""))))
    context.run = subprocess.run([sys.executable, "-m", "orcd.cli", "serve", *argv], env=env,
                                 capture_output=True, text=True, timeout=120)


@given("a file that is not a GGUF model")
def step_bad_file(context):
    path = os.path.join(context.model_dir.name, "not-a-model.gguf")
    with open(path, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
    context.model_paths["bad"] = path


@given("a port that is already taken")
def step_busy_port(context):
    import socket
    context.busy_socket = socket.socket()
    context.busy_socket.bind(("127.0.0.1", free_port()))
    context.busy_socket.listen()
    context.busy_port = context.busy_socket.getsockname()[1]


@then('it exits with status 1 and one line naming "{text}"')
def step_start_failure(context, text):
    run = context.run
    assert run.returncode == 1, (run.returncode, run.stderr)
    plain = [line for line in run.stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1 and text in plain[0], run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "error" for e in events), run.stderr


@when("I stop the worker with {how}")
def step_stop(context, how):
    context.stop_started = time.monotonic()
    if how == "POST /shutdown":
        context.response = context.worker.http.post("/shutdown", json={})
        assert context.response.status_code == 202, context.response.text
    else:
        context.worker.signal(getattr(signal, how))


@then("the stream ends with a terminal event")
def step_terminal(context):
    events = context.stream.finish()
    assert events[-1][0] in ("end", "error"), events[-3:]


@then("the worker exits with status 0 within 5 seconds")
def step_exit_zero(context):
    code = context.worker.wait_exit(STOP_TIMEOUT_SEC + 1)  # 1 s of slack for a loaded CI machine
    assert code == 0, (code, context.worker.log()[-2000:])
    assert "shutdown" in [e["event"] for e in context.worker.events()]


class CallbackHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.notices.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@given("a callback receiver")
def step_callback_receiver(context):
    server = HTTPServer(("127.0.0.1", 0), CallbackHandler)
    server.notices = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context.callback = server
    context.add_cleanup(server.shutdown)


@when('a worker serving the "{name}" model starts with that callback')
def step_worker_with_callback(context, name):
    url = f"http://127.0.0.1:{context.callback.server_port}/ready"
    context.worker = WorkerProcess(model_path(context, name), context.device, "--callback-url", url,
                                   "--worker-id", "behave-worker").wait_ready()
    context.workers[("callback", id(context.worker))] = context.worker


@then("the callback receives the ready notice")
def step_ready_notice(context):
    deadline = time.monotonic() + 10
    while not context.callback.notices and time.monotonic() < deadline:
        time.sleep(0.05)
    notice = context.callback.notices[0]
    assert set(notice) == {"worker_id", "uri", "model", "vram_bytes"}, notice
    assert notice["worker_id"] == "behave-worker" and notice["uri"] == context.worker.base, notice


LONG_PROMPT = "Once upon a time"
PROBE_TOKENS = 300  # far more than a job decodes between its first token and a cancel


def long_job_seed(context) -> int:
    """A seed whose job runs PROBE_TOKENS without an end-of-sequence token: random tiny models
    draw EOS now and then, which would end a "long" job before the scenario acts on it. A
    seed replays the same tokens on the same engine, so the probe holds for the real job."""
    worker = context.worker
    if not hasattr(worker, "long_seed"):
        worker.long_seed = 1
        while context.model_name != "smollm2":
            end = Stream(worker, {"job_id": "probe", "prompt": LONG_PROMPT, "max_tokens": PROBE_TOKENS,
                                  "seed": worker.long_seed}).finish()[-1]
            if end[1].get("stop_reason") == "max_tokens":
                break
            worker.long_seed += 1
    return worker.long_seed


@given("a long job is streaming")
def step_long_job(context):
    seed = long_job_seed(context)
    context.stream = Stream(context.worker, {"job_id": "long", "prompt": LONG_PROMPT,
                                             "max_tokens": 2000, "seed": seed})
    context.open_streams = [context.stream]
    assert context.stream.status == 200
    context.stream.until("token")


@given('a worker serving the "{name}" model whose first job allocation fails')
def step_fault_worker(context, name):
    """ORCD_FAULT=alloc:N counts allocations from the engine's creation: N is one past what a
    load makes, so the load succeeds and the first job's first allocation fails (only a job
    that scores its prompt allocates: its prompt's logits)."""
    from orcd.engine import create_engine
    path = model_path(context, name)
    probe = create_engine("cuda")
    probe.load(path, 1024)
    made = probe._model.stats()["allocations_made"]
    probe.close()
    context.model_name = name
    context.worker = WorkerProcess(path, context.device, "--ctx", "1024",
                                   env={"ORCD_FAULT": f"alloc:{made + 1}"}).wait_ready()
    context.workers[("fault", id(context.worker))] = context.worker
