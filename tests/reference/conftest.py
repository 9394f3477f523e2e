import pytest

from orcd.reference import load
from orcd.testing.synth import write_model


@pytest.fixture(scope="session")
def synth_model(tmp_path_factory):
    """synth_model(arch, quant) -> path of a tiny synthetic model, written once per session."""
    root, made = tmp_path_factory.mktemp("synth"), {}

    def make(arch, quant="F32"):
        if (arch, quant) not in made:
            made[arch, quant] = write_model(root / f"{arch}-{quant}.gguf", arch, quant=quant, seed=3)
        return made[arch, quant]
    return make


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    return load(smollm2_path, 512)
