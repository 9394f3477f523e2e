"""behave hooks: scenarios tagged @gpu skip, with the reason, where no CUDA device is visible.

Workers are real `orcd serve` processes. Each feature shares one worker per configuration
(started by its first scenario, stopped after the feature), so a feature pays for one model
load; scenarios that stop a worker start their own. With a GPU the workers run the CUDA
engine, without one the NumPy engine (--device cpu); ORCD_TEST_DEVICE overrides.
"""
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent / "steps"))

from orcd import _cuda  # noqa: E402


def before_all(context):
    context.gpu_count = _cuda.device_count()
    context.device = os.environ.get("ORCD_TEST_DEVICE") or ("cuda" if context.gpu_count else "cpu")
    context.model_dir = tempfile.TemporaryDirectory(prefix="orcd-behave-")
    context.model_paths = {}


def before_feature(context, feature):
    context.workers = {}


def before_scenario(context, scenario):
    if "gpu" in scenario.effective_tags and context.gpu_count == 0:
        scenario.skip("needs an NVIDIA GPU: orcd._cuda.device_count() is 0 here")
    if "no_gpu" in scenario.effective_tags and context.gpu_count > 0:
        scenario.skip("checks the start-up failure without a GPU; this machine has one")


def after_scenario(context, scenario):
    for stream in getattr(context, "open_streams", []):
        stream.close()


def after_feature(context, feature):
    for worker in context.workers.values():
        worker.stop()


def after_all(context):
    context.model_dir.cleanup()
