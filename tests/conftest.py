"""Shared fixtures. GPU tests carry the `gpu` marker and skip, with the reason shown, where
no CUDA device is visible; real-model tests skip where their file is absent."""
from __future__ import annotations

import functools
from pathlib import Path

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


def o200k_ranks_file() -> bytes:
    from orcd.testing import o200k
    try:
        return o200k.tiktoken_file()
    except FileNotFoundError as e:
        pytest.skip(str(e))


GPT_OSS_TEMPLATE = Path(__file__).parent / "tokenizer/templates/openai-gpt-oss-120b.jinja"


@pytest.fixture(scope="session")
def harmony_tokenizer(tmp_path_factory):
    """The real o200k_harmony vocabulary with gpt-oss's real chat template (bpe-openai)."""
    import orcd.tokenizer
    from orcd.testing import o200k
    o200k_ranks_file()
    path = tmp_path_factory.mktemp("harmony") / "o200k_harmony.gguf"
    return orcd.tokenizer.load(o200k.write_vocab_gguf(path, GPT_OSS_TEMPLATE.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def harmony_encoding(tmp_path_factory):
    """openai-harmony's GPT-OSS encoding, reading o200k_base.tiktoken offline."""
    harmony = pytest.importorskip("openai_harmony", reason="openai-harmony is not installed "
                                  "(pip install openai-harmony)")
    folder = tmp_path_factory.mktemp("encodings")
    (folder / "o200k_base.tiktoken").write_bytes(o200k_ranks_file())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_ENCODINGS_BASE", str(folder))
        yield harmony.load_harmony_encoding(harmony.HarmonyEncodingName.HARMONY_GPT_OSS)
