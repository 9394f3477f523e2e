"""orcd: a single-GPU LLM inference worker (one GGUF model in VRAM, tokens over SSE)."""
__version__ = "0.1.0"

import os as _os

# The NumPy reference engine does one-token matvecs: OpenBLAS's thread pool only adds
# contention there (11x slower on a busy 2-core machine, measured), so default to one
# thread unless the user chose otherwise. Must run before NumPy is first imported.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
