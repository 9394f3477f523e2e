"""Writes the seed corpus of fuzz/gguf.py into fuzz/corpus/gguf/ (committed; run again only to
change it): the headers of our synthetic models of each architecture (metadata and tensor
table, no tensor data), a complete small file, and the real SmolLM2 header with its arrays
(vocabulary, merges) cut to their first 64 entries, so that each seed stays small."""
import sys
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "gguf")]
from orcd.gguf._reader import parse  # noqa: E402
from orcd.models import bundled_path  # noqa: E402
from orcd.testing.synth import write_model  # noqa: E402
from tinygguf import write_tiny  # noqa: E402

OUT = ROOT / "fuzz" / "corpus" / "gguf"
ARRAY_ENTRIES = 64
SYNTH = {"qwen2": "Q8_0", "llama": "Q4_1", "phi3": "Q4_0", "gpt-oss": "MXFP4"}


def header(path: Path) -> bytes:
    data = path.read_bytes()
    return data[:parse(np.frombuffer(data, dtype=np.uint8), str(path))[4]]


def smollm2_header(out: Path) -> bytes:
    """The real file's keys and tensor table, its arrays cut short; written by gguf-py."""
    src = gguf.GGUFReader(str(bundled_path()))
    writer = gguf.GGUFWriter(str(out), src.fields["general.architecture"].contents())
    for name, field in src.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = field.contents()
        if isinstance(value, list):
            value = value[:ARRAY_ENTRIES]
            writer.add_key_value(name, value, field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(name, value, field.types[0])
    for t in src.tensors:
        writer.add_tensor_info(t.name, list(reversed([int(n) for n in t.shape])), np.dtype(np.float32),
                               int(t.n_bytes), raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return out.read_bytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    for arch, quant in SYNTH.items():
        (OUT / f"{arch}-header.gguf").write_bytes(header(write_model(tmp / f"{arch}.gguf", arch, quant=quant)))
    write_tiny(tmp / "tiny.gguf")
    (OUT / "tiny-complete.gguf").write_bytes((tmp / "tiny.gguf").read_bytes())
    (OUT / "smollm2-header.gguf").write_bytes(smollm2_header(tmp / "smollm2.gguf"))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
