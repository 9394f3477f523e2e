"""orcd: a single-GPU LLM inference worker (one GGUF model in VRAM, tokens over SSE)."""
__version__ = "0.1.0"
