"""NumPy forward passes, one per architecture family: the test oracle and the CPU engine.

    model = load(path, ctx)
    cache = KVCache(model.config, model.ctx)
    logits = forward(model, prompt_ids, cache)        # prefill: one row per prompt token
    logits = forward(model, [next_id], cache)         # decode: one token over the cache
"""
from __future__ import annotations

import numpy as np

from orcd.reference import gpt_oss, llama
from orcd.reference.model import KVCache, Model, load

FORWARD = {"llama": llama.forward, "qwen2": llama.forward, "phi3": llama.forward,
           "gpt-oss": gpt_oss.forward}


def forward(model: Model, tokens, cache: KVCache, last_only: bool = False) -> np.ndarray:
    """Logits (len(tokens), vocab_size), float32, for tokens at the cache's next positions;
    last_only: of the last token only (prefill before sampling)."""
    return FORWARD[model.config.arch](model, np.asarray(tokens, dtype=np.int64), cache, last_only)


__all__ = ["FORWARD", "KVCache", "Model", "forward", "load"]
