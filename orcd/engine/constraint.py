"""A constraint on the next token (structured output): the engine asks it for the ids allowed
next as a bitmask, samples among them, and tells it which id was drawn.

The bitmask is the one llguidance and xgrammar fill: uint32 words, bit (i % 32) of word
i // 32 set when id i is allowed, ceil(vocab / 32) words. The CUDA engine uploads the same
words to the device each step.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class Constraint(Protocol):
    def allowed(self) -> np.ndarray:
        """The uint32 bitmask of the ids allowed as the next token."""

    def consume(self, token: int) -> None:
        """Advance past `token`, which allowed() permitted."""


def bitmask_words(vocab: int) -> int:
    return (vocab + 31) // 32


def allowed_ids(bitmask: np.ndarray, vocab: int) -> np.ndarray:
    """Booleans (vocab,) from a bitmask."""
    bits = np.unpackbits(np.ascontiguousarray(bitmask, dtype="<u4").view(np.uint8), bitorder="little")
    return bits[:vocab].astype(bool)


def masked(logits: np.ndarray, bitmask: np.ndarray) -> np.ndarray:
    """A copy of logits with -inf where the bitmask forbids the id: the sampler never draws it
    (exp(-inf) = 0 in the softmax; argmax passes it over)."""
    out = np.array(logits, dtype=np.float32)
    out[~allowed_ids(bitmask, out.size)] = -np.inf
    return out
