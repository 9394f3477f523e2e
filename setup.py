"""Builds the Cython extensions in place; `orcd._cuda` links the nvcc static library.

The CUDA library itself is built by the Makefile (`make cuda`), which passes its path
in ORCD_CUDA_LIB; the CUDA toolkit is located through nvcc (see cuda_home()).
"""
import os
import re
import subprocess
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


def cuda_home() -> Path:
    if os.environ.get("CUDA_HOME"):
        return Path(os.environ["CUDA_HOME"])
    out = subprocess.run(["nvcc", "-dryrun", "-x", "cu", "/dev/null"],
                         capture_output=True, text=True).stderr
    top = re.search(r"TOP=(\S+)", out)
    if not top:
        raise SystemExit("cannot locate the CUDA toolkit: set CUDA_HOME or put nvcc on PATH")
    return Path(top.group(1)).resolve()


def cuda_lib_dir(home: Path) -> Path:
    for sub in ("targets/x86_64-linux/lib", "lib64", "lib"):
        if (home / sub / "libcudart_static.a").exists():
            return home / sub
    raise SystemExit(f"libcudart_static.a not found under {home}")


def extensions():
    if os.environ.get("ORCD_NO_EXT"):
        return []  # `make build` installs the package first, then builds in place
    exts = []
    for pyx in sorted(ROOT.glob("orcd/**/*.pyx")):
        rel = pyx.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        kw = dict(include_dirs=[numpy.get_include()],
                  define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                  extra_compile_args=["-O3"])
        if name == "orcd._cuda":
            home = cuda_home()
            lib = Path(os.environ.get("ORCD_CUDA_LIB", ROOT / "cuda/build/liborcd_cuda.a"))
            kw["include_dirs"] += [str(ROOT / "cuda/include"), str(home / "include")]
            kw["extra_objects"] = [str(lib), str(cuda_lib_dir(home) / "libcudart_static.a")]
            kw["libraries"] = ["stdc++", "rt", "dl", "pthread"]
            kw["depends"] = [str(lib), str(ROOT / "cuda/include/orcd_cuda.h"),
                             *map(str, ROOT.glob("orcd/_cuda_*.pxi"))]
        exts.append(Extension(name, [str(rel)], **kw))
    return cythonize(exts, language_level=3, quiet=True,
                     compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=extensions())
