"""Log-probabilities of tokens under the model's own distribution: log-softmax of the raw
logits, before the repetition penalty, the temperature, the truncation samplers and a grammar
mask (what vLLM reports, and what a prompt-scoring harness needs).

A job asks for them with a Scoring; the engine fills it as it goes: `prompt` gets one entry
per prompt token after the first (filled during prefill), `generated` one entry per generated
id, appended before the id is yielded.
"""
from __future__ import annotations

import dataclasses

import numpy as np

MAX_TOP_LOGPROBS = 20  # OpenAI's limit on top_logprobs, and the CUDA kernel's array size


@dataclasses.dataclass(frozen=True)
class TokenLogprob:
    id: int
    logprob: float
    top: tuple[tuple[int, float], ...]  # the top_n (id, logprob), most likely first


@dataclasses.dataclass
class Scoring:
    top_n: int = 0
    with_prompt: bool = False
    prompt: list[TokenLogprob] = dataclasses.field(default_factory=list)
    generated: list[TokenLogprob] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if not 0 <= self.top_n <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_n must be in 0..{MAX_TOP_LOGPROBS}, got {self.top_n}")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of log-probabilities, max-subtracted, the sum taken in float64."""
    l = np.asarray(logits, dtype=np.float64)
    shifted = l - l.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def top_ids(logprobs: np.ndarray, n: int) -> np.ndarray:
    """The n most likely ids of one row, most likely first, equal values lower id first."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.argpartition(-logprobs, n - 1)[:n] if n < logprobs.size else np.arange(logprobs.size)
    # a tie at the n-th value may have left a lower id out of the partition
    cut = logprobs[candidates].min()
    candidates = np.flatnonzero(logprobs >= cut)
    order = np.lexsort((candidates, -logprobs[candidates]))
    return candidates[order][:n]


def token_logprob(logits: np.ndarray, token: int, top_n: int) -> TokenLogprob:
    lp = log_softmax(logits)
    return _entry(lp, token, top_n)


def next_token_logprobs(logits: np.ndarray, next_ids, top_n: int) -> list[TokenLogprob]:
    """Row i of logits (positions p..) scores next_ids[i], the token at position p + i + 1."""
    lp = log_softmax(logits[: len(next_ids)])
    return [_entry(row, int(t), top_n) for row, t in zip(lp, next_ids)]


def _entry(lp: np.ndarray, token: int, top_n: int) -> TokenLogprob:
    return TokenLogprob(int(token), float(lp[token]),
                        tuple((int(i), float(lp[i])) for i in top_ids(lp, top_n)))
