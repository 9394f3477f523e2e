"""Builds orcd/gguf/_reader.pyx with clang's coverage instrumentation (inline 8-bit edge
counters, their PC table and comparison tracing, which atheris's libFuzzer reads) into
build/fuzz/, beside the normal build: `make fuzz` runs this, then fuzz/fuzz_gguf.py.
-fsanitize=fuzzer-no-link would add stack-depth tracing, whose __sancov_lowest_stack
atheris's libFuzzer does not export."""
import os
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parents[1]
COVERAGE = "-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"
OUT = ROOT / "build" / "fuzz"

os.environ.update(CC="clang", CXX="clang++", LDSHARED="clang -shared")
ext = Extension("orcd.gguf._reader", [str(ROOT / "orcd/gguf/_reader.pyx")],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O1", "-g", COVERAGE],
                extra_link_args=[COVERAGE])
sys.argv[1:] = ["-q", "build_ext", "--build-lib", str(OUT), "--build-temp", str(OUT / "tmp")]
setup(name="orcd-fuzz", ext_modules=cythonize([ext], language_level=3, quiet=True,
                                              build_dir=str(OUT / "c"),
                                              compiler_directives={"boundscheck": False, "wraparound": False}))
