"""deploy/: the systemd template unit and the Kubernetes manifest are valid for their tools,
and what they run is a real `orcd serve` command line and a working /shutdown hook."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orcd.cli import build_parser
from orcd.testing.worker import WorkerProcess

DEPLOY = Path(__file__).parents[2] / "deploy"
UNIT = DEPLOY / "orcd@.service"
MANIFEST = DEPLOY / "kubernetes.yaml"
KUBERNETES_VERSION = "1.30.0"


def unit_value(key: str) -> str:
    return re.search(rf"^{key}=(.*)$", UNIT.read_text(), re.MULTILINE).group(1)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    instance = tmp_path / "orcd@3.service"  # a template is verified through an instance
    instance.write_text(UNIT.read_text())
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", str(instance)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "", run.stderr  # unknown keys only warn


def test_the_unit_runs_orcd_serve_on_its_gpu_and_port():
    """ExecStart, as systemd and the shell expand it for instance 3, is a command line that
    `orcd serve` accepts: GPU 3 on port 8083."""
    exec_start = unit_value("ExecStart").replace("%i", "3").replace("$$", "$")
    shell, flag, script = exec_start.split(" ", 2)
    assert (shell, flag) == ("/bin/sh", "-c")
    argv = subprocess.run([shell, flag, script.strip("'").replace("exec orcd", 'printf "%s\\n"'), "sh"],
                          capture_output=True, text=True, check=True).stdout.split()
    args = build_parser().parse_args(argv)
    assert (args.command, args.gpu_device, args.port) == ("serve", 3, 8083)
    assert int(unit_value("TimeoutStopSec")) > 5  # SPEC: the worker exits within 5 s of SIGTERM


def manifests() -> list[dict]:
    return list(yaml.safe_load_all(MANIFEST.read_text()))


def test_the_manifest_is_valid_for_kubernetes():
    kubernetes_validate = pytest.importorskip("kubernetes_validate",
                                              reason="kubernetes-validate is not installed")
    for doc in manifests():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def container() -> dict:
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_one_gpu_per_pod_probes_on_health_and_scrape_annotations():
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    c = container()
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    port = c["ports"][0]["containerPort"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"
    notes = pod["metadata"]["annotations"]
    assert (notes["prometheus.io/scrape"], notes["prometheus.io/path"]) == ("true", "/metrics")
    assert int(notes["prometheus.io/port"]) == port


def test_every_environment_variable_is_an_orcd_serve_option(monkeypatch):
    env = {e["name"]: e.get("value", "from-a-reference") for e in container()["env"]}
    for name, value in env.items():
        monkeypatch.setenv(name, "0" if name == "ORCD_GPU_DEVICE" else value)
    args = build_parser().parse_args(container()["command"][1:])
    options = {f"ORCD_{k.upper()}" for k in vars(args)}
    assert set(env) <= options, set(env) - options
    assert (args.host, args.port) == ("0.0.0.0", 8080)


def test_the_prestop_hook_stops_a_real_worker(tiny_model):
    """The hook's own command, run against a real worker with an API key, makes it exit 0."""
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    worker = WorkerProcess(str(tiny_model("qwen2", "Q8_0")), "cpu", env={"ORCD_API_KEY": "k-deploy"}).wait_ready()
    try:
        hook = [arg.replace("127.0.0.1:8080", f"127.0.0.1:{worker.port}") for arg in command]
        assert hook[0] == "python3"
        subprocess.run([sys.executable, *hook[1:]], env={**os.environ, "ORCD_API_KEY": "k-deploy"},
                       check=True, timeout=30)
        assert worker.wait_exit(10) == 0
        assert "shutdown" in [e["event"] for e in worker.events()]
    finally:
        worker.stop()
