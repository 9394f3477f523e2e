"""behave hooks: scenarios tagged @gpu skip, with the reason, where no CUDA device is visible."""
from orcd import _cuda


def before_all(context):
    context.gpu_count = _cuda.device_count()


def before_scenario(context, scenario):
    if "gpu" in scenario.effective_tags and context.gpu_count == 0:
        scenario.skip("needs an NVIDIA GPU: orcd._cuda.device_count() is 0 here")
