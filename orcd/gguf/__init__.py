"""GGUF files: mmap, parse (Cython), validate, and tensor bytes as zero-copy views.

    with orcd.gguf.open(path) as f:
        f.metadata["llama.block_count"], f.tensors["token_embd.weight"].data
"""
from orcd.gguf.file import GGUFFile, TensorInfo, open

__all__ = ["GGUFFile", "TensorInfo", "open"]
