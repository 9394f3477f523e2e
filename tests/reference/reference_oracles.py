"""What the oracle tests share: teacher-forced logits and argmax checks on clear margins."""
from __future__ import annotations

import numpy as np

from orcd.reference import KVCache, forward


def teacher_forced(model, ids) -> np.ndarray:
    """Logits at every position of `ids`, from one prefill."""
    return forward(model, ids, KVCache(model.config, model.ctx))


def decode_argmax(model, prompt, continuation) -> np.ndarray:
    """The argmax after the prompt and after each continuation token, fed one at a time
    through the decode path (the KV cache), as a greedy generation would."""
    cache = KVCache(model.config, model.ctx)
    logits = forward(model, prompt, cache, last_only=True)
    picks = []
    for token in continuation:
        picks.append(int(np.argmax(logits[-1])))
        logits = forward(model, [token], cache)
    return np.array(picks)
