"""Coverage-guided fuzzing of the GGUF reader and validator with atheris (`make fuzz`).

Each input is a whole file: parsed by the Cython reader built with clang's coverage
instrumentation (fuzz/build.py; its edge counters and comparisons steer libFuzzer), then
checked as `orcd.gguf.open` and `orcd.models.describe` check a file (tensor table, required
keys per architecture, tensor map), those Python modules instrumented by atheris. An input
passes if it is accepted or refused with ModelLoadError; anything else is a crash. A hang is
an input taking over 1 s (-timeout=1). An oversized allocation is Python memory (tracemalloc
sees Python objects and NumPy buffers) above 64 bytes per input byte plus 1 MiB: a Python
object per metadata byte fits, a count trusted from the file does not; native memory is
capped by RLIMIT_AS as well.

    make fuzz                                  # 1,000,000 inputs from the seed corpus
    python3 fuzz/gguf.py -runs=N fuzz/corpus/gguf   # any libFuzzer flags
"""
import ctypes
import importlib.util
import os
import resource
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

import numpy as np  # noqa: E402

with atheris.instrument_imports(include=["orcd.gguf", "orcd.models"]):
    from orcd.errors import ModelLoadError
    from orcd.gguf.validate import tensor_spans
    from orcd.models import check_tensors, config_from_metadata



def instrumented_reader():
    """The reader built by fuzz/build.py, loaded beside the package's normal one under the same
    name, once libFuzzer's symbols are there (main)."""
    built = next((ROOT / "build" / "fuzz" / "orcd" / "gguf").glob("_reader.*.so"), None)
    if built is None:
        sys.exit("build/fuzz has no instrumented reader: run `make fuzz` (or python3 fuzz/build.py)")
    spec = importlib.util.spec_from_file_location("orcd.gguf._reader", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reader = None

BYTES_PER_INPUT_BYTE = 64
SLACK_BYTES = 1 << 20
NATIVE_HEADROOM_BYTES = 256 << 20


def check(data: bytes) -> None:
    if not data:
        return  # orcd.gguf.open refuses an empty file before parsing it
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        version, metadata, raw, alignment, data_offset = reader.parse(buf, "fuzz.gguf")
        spans = tensor_spans("fuzz.gguf", raw, alignment, data_offset, buf.size)
        shapes = {s.name: tuple(int(n) for n in s.shape) for s in spans}
        check_tensors(config_from_metadata(metadata, tensor_names=shapes), shapes)
    except ModelLoadError:
        pass


def first_input(data: bytes) -> None:
    """atheris.Fuzz loads its core, libFuzzer inside, only now: the instrumented reader's
    __sanitizer_cov_* hooks resolve to it from here on (its counters join the run)."""
    global reader
    if reader is None:
        core = next(line.split()[-1] for line in open("/proc/self/maps") if "atheris/core_" in line)
        ctypes.CDLL(core, mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD)  # the same copy, symbols made global
        reader = instrumented_reader()
    one_input(data)


def one_input(data: bytes) -> None:
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    check(data)
    grown = tracemalloc.get_traced_memory()[1] - before
    if grown > BYTES_PER_INPUT_BYTE * len(data) + SLACK_BYTES:
        raise MemoryError(f"{grown} bytes allocated for a {len(data)}-byte file")


def main() -> None:
    with open("/proc/self/statm") as f:
        virtual = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = virtual + NATIVE_HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    atheris.Setup(sys.argv, first_input)
    tracemalloc.start()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
