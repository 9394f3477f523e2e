"""Sampling parameters and the reference sampler; the CUDA sampler follows it step for step.

For generated token number `step` (0 first), from float32 logits:
  1. repetition penalty r != 1: each distinct id of the prompt and the output so far,
     l = l / r if l > 0 else l * r;
  2. temperature 0: argmax (lowest id on ties), done; else l = l / T;
  3. top-k (k > 0): keep the k largest (ties: lower id);
  4. p = softmax of the kept logits, max-subtracted, float32;
  5. sort by p descending (ties: lower id); top-p (< 1): keep the shortest prefix whose
     float32 running sum reaches top_p (all if rounding never does);
  6. min-p (> 0): keep p >= min_p * p_max;
  7. u = (Philox4x32-10(key = (seed lo, seed hi), counter = (step lo, step hi, 0, 0))[0] >> 8)
     * 2^-24; the first kept token whose running sum (float32, in order) exceeds u times the
     last running sum; the last token if none does.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from orcd.errors import InvalidRequest

MASK32 = 0xFFFFFFFF
PHILOX_M = (0xD2511F53, 0xCD9E8D57)  # round multipliers (Salmon et al. 2011, Random123)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)  # key schedule: golden ratio and sqrt(3) - 1


@dataclasses.dataclass(frozen=True)
class Range:
    """low..high, open at low where low_open; `zero` admits 0 below low (temperature 0 is
    greedy)."""
    low: float
    high: float
    low_open: bool = False
    zero: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return (self.zero and value == 0) or (above and value <= self.high)

    def __str__(self) -> str:
        interval = f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        return f"0 or {interval}" if self.zero else interval


# SPEC §2's ranges of the float parameters, written once (the server's schema reads them).
# The floors keep every step finite: a logit divided by the penalty and the temperature
# grows at most 10^4-fold, far inside float32 (1e-40 made inf, then NaN, of every score).
RANGES = {
    "temperature": Range(0.01, 2.0, zero=True),
    "top_p": Range(0.0, 1.0, low_open=True),
    "min_p": Range(0.0, 1.0),
    "repetition_penalty": Range(0.01, 2.0),
}


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int = 0

    def validate(self, vocab_size: int) -> "SamplingParams":
        """Raise InvalidRequest naming the first field outside its SPEC §2 range."""
        for field, allowed in RANGES.items():
            _number(field, getattr(self, field), allowed)
        _integer("top_k", self.top_k, 0, vocab_size)
        _integer("seed", self.seed, 0, 2**64 - 1)
        return self


def _number(field: str, value, allowed: Range) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InvalidRequest(f"{field} must be a number, got {value!r}")
    if value not in allowed:
        raise InvalidRequest(f"{field} must be in {allowed}, got {value!r}")


def _integer(field: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(f"{field} must be in [{low}, {high}], got {value!r}")


def philox4x32_10(key: tuple[int, int], counter: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Philox4x32-10 (Random123): ten rounds of two 32×32→64-bit multiplies, the key bumped
    by the Weyl constants between rounds."""
    k0, k1 = key
    c0, c1, c2, c3 = counter
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + PHILOX_W[0]) & MASK32, (k1 + PHILOX_W[1]) & MASK32
        p0, p1 = PHILOX_M[0] * c0, PHILOX_M[1] * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
    return c0, c1, c2, c3


def uniform(seed: int, step: int) -> np.float32:
    """u in [0, 1): the top 24 bits of the first Philox word for (seed, step)."""
    out = philox4x32_10((seed & MASK32, seed >> 32), (step & MASK32, step >> 32, 0, 0))
    return np.float32((out[0] >> 8) * 2.0**-24)


def penalize(logits: np.ndarray, history, penalty: float) -> np.ndarray:
    """CTRL's repetition penalty on every distinct id seen: positive logits shrink, negative grow."""
    if penalty == 1.0:
        return logits
    ids = np.unique(np.asarray(history, dtype=np.int64))
    if ids.size == 0:
        return logits
    seen = logits[ids]
    r = np.float32(penalty)
    logits[ids] = np.where(seen > 0, seen / r, seen * r)
    return logits


def descending(values: np.ndarray) -> np.ndarray:
    """Indices of `values`, largest first, equal values by lower index (a stable sort)."""
    return np.argsort(-values, kind="stable")


def top_p_prefix(p: np.ndarray, top_p: float) -> int:
    """Length of the shortest prefix of p (sorted descending) whose sum reaches top_p; all of
    p when rounding keeps the sum below it."""
    reached = np.cumsum(p, dtype=np.float32) >= np.float32(top_p)
    return int(np.argmax(reached)) + 1 if reached[-1] else p.size


def draw(p: np.ndarray, u: np.float32) -> int:
    """Index of the first cumulative sum (float32, in order) above u · total; the last if
    rounding leaves none. total is the last cumulative sum."""
    cum = np.cumsum(p, dtype=np.float32)
    above = cum > u * cum[-1]
    return int(np.argmax(above)) if above[-1] else p.size - 1


def sample(logits: np.ndarray, params: SamplingParams, step: int, history) -> int:
    """The id drawn from `logits` (vocab,) for generated token number `step`; history holds
    the prompt and every generated id so far."""
    l = penalize(np.array(logits, dtype=np.float32), history, params.repetition_penalty)
    if params.temperature == 0:
        return int(np.argmax(l))  # first maximum: the lowest id on ties
    l = l / np.float32(params.temperature)
    # the kept ids in ascending order, so that a stable sort breaks ties by lower id
    ids = np.sort(descending(l)[: params.top_k]) if 0 < params.top_k < l.size else np.arange(l.size)
    e = np.exp(l[ids] - np.max(l[ids]))  # softmax, max-subtracted
    p = e / np.sum(e, dtype=np.float32)
    order = descending(p)
    ids, p = ids[order], p[order]
    if params.top_p < 1.0:
        n = top_p_prefix(p, params.top_p)
        ids, p = ids[:n], p[:n]
    if params.min_p > 0.0:
        n = int(np.count_nonzero(p >= np.float32(params.min_p) * p[0]))  # p is sorted: a prefix
        ids, p = ids[:n], p[:n]
    return int(ids[draw(p, uniform(params.seed, step))])
