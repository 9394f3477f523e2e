"""A model for the NumPy reference: its config and every tensor dequantized to float32 once,
and the KV cache its forward pass fills."""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

import orcd.gguf
from orcd.models import ModelConfig, describe
from orcd.quant import dequantize


@dataclasses.dataclass
class Model:
    config: ModelConfig
    tensors: dict[str, np.ndarray]  # GGUF name -> float32 array in NumPy order (last axis = row)
    ctx: int                        # the context the KV cache is sized for


def load(path, ctx: int | None = None, progress_cb: Callable[[int], None] | None = None) -> Model:
    """Read and dequantize every tensor of the GGUF file at `path`; ctx defaults to the
    model's context length. progress_cb, if given, receives 0, 25, 50, 75 and 100."""
    with orcd.gguf.open(path) as f:
        config = describe(f)
        tensors = {}
        infos = list(f.tensors.values())
        marks = {len(infos) * p // 100: p for p in (25, 50, 75)}
        if progress_cb:
            progress_cb(0)
        for n, info in enumerate(infos):
            shape = tuple(reversed(info.shape))
            tensors[info.name] = dequantize(info.data, info.ggml_type, shape)
            if progress_cb and n + 1 in marks:
                progress_cb(marks[n + 1])
    if progress_cb:
        progress_cb(100)
    return Model(config, tensors, ctx or config.context_length)


class KVCache:
    """Keys and values of every layer for positions 0..length-1, laid out
    (block_count, head_count_kv, ctx, head_dim) so one head's keys are contiguous."""

    def __init__(self, config: ModelConfig, ctx: int):
        shape = (config.block_count, config.head_count_kv, ctx, config.key_length)
        # np.zeros maps untouched pages lazily: a long context costs memory only as it fills.
        self.k = np.zeros(shape, np.float32)
        self.v = np.zeros(shape[:3] + (config.value_length,), np.float32)
        self.ctx = ctx
        self.length = 0

    def positions(self, n: int) -> np.ndarray:
        if self.length + n > self.ctx:
            raise ValueError(f"{self.length} + {n} tokens exceed the context of {self.ctx}")
        return np.arange(self.length, self.length + n)

    def store(self, layer: int, k: np.ndarray, v: np.ndarray):
        """Append k, v (tokens, head_count_kv, head_dim) of `layer` at the next positions;
        returns that layer's keys and values so far, (head_count_kv, keys, head_dim)."""
        end = self.length + k.shape[0]
        self.k[layer, :, self.length:end] = k.transpose(1, 0, 2)
        self.v[layer, :, self.length:end] = v.transpose(1, 0, 2)
        return self.k[layer, :, :end], self.v[layer, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def truncate(self, length: int) -> None:
        self.length = min(self.length, length)
