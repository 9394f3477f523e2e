"""The tiny GGUFWriter file (tinygguf.py), written once per session."""
from __future__ import annotations

import pytest
from tinygguf import write_tiny


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny(path)
    return path
