"""Shared fixtures. GPU tests carry the `gpu` marker and skip, with the reason shown, where
no CUDA device is visible; real-model tests skip where their file is absent."""
from __future__ import annotations

import functools

import pytest


@functools.cache
def gpu_count() -> int:
    try:
        from orcd import _cuda
    except ImportError as e:  # not built: make compile
        pytest.exit(f"orcd._cuda is not built ({e}); run `make compile` first", returncode=1)
    return _cuda.device_count()


def pytest_collection_modifyitems(config, items):
    if gpu_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU: orcd._cuda.device_count() is 0 here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2_path():
    from orcd.models import bundled_path
    try:
        return bundled_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def qwen2_path():
    """The real Qwen2.5-Coder-0.5B-Instruct Q4_K_M file (`make models`)."""
    from orcd.models import real_path
    try:
        return real_path("qwen2.5-coder-0.5b")
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """tiny_model(arch, quant) -> path of a tiny synthetic model, written once per session."""
    from orcd.testing.synth import write_model
    root, made = tmp_path_factory.mktemp("tiny"), {}

    def make(arch, quant="F32"):
        if (arch, quant) not in made:
            made[arch, quant] = write_model(root / f"{arch}-{quant}.gguf", arch, quant=quant)
        return made[arch, quant]
    return make
