"""The CUDA engine against the NumPy reference (orcd.reference): how far its logits may sit from
the reference's, shared by tests/cuda and tests/real. Failures raise AssertionError with the
figures, since pytest rewrites assertions in test modules only."""
from __future__ import annotations

import numpy as np

from orcd.testing.oracles import top2_margin


def tolerance(want) -> float:
    # FP16 KV cache and FP16 tensor-core prefill against float32 NumPy: ~1e-3 relative per
    # layer; 2 % of the largest logit bounds it with room for the tiny models' few layers.
    return 0.02 * float(np.abs(want).max()) + 1e-3


def logit_error(got, want) -> str:
    """The measured error, for the log: how much of the tolerance a run uses."""
    diff = np.abs(np.asarray(got, np.float64) - want)
    peak = float(np.abs(want).max())
    return (f"max |error| {diff.max():.4f} = {100 * diff.max() / peak:.3f} % of the largest "
            f"|logit| {peak:.2f}, RMS {np.sqrt(np.mean(diff**2)):.4f}, tolerance {tolerance(want):.4f}")


def check_logits(got, want, strict_argmax=False) -> None:
    """Logits close, and the same argmax at every position (strict_argmax) or wherever the
    reference's top two are further apart than twice the error allowed."""
    tol = tolerance(want)
    assert np.abs(got - want).max() <= tol, logit_error(got, want)
    same = got.argmax(-1) == want.argmax(-1)
    if strict_argmax:
        assert same.all(), f"argmax differs at positions {np.flatnonzero(~same).tolist()}"
        return
    clear = top2_margin(want) > 2 * tol
    assert clear.any(), "no position with a clear argmax to compare"
    assert same[clear].all(), f"argmax differs at clear positions {np.flatnonzero(clear & ~same).tolist()}"


def greedy_shortfall(steps, ids) -> np.ndarray:
    """How far below the reference's best logit each greedy id's logit lies (row k of steps
    holds the reference logits that predict ids[k])."""
    return steps.max(-1) - steps[np.arange(len(ids)), ids]


def check_greedy(steps, ids) -> None:
    """Each greedy id the reference's best or within twice the logit tolerance of it: both
    logits may be off by the tolerance, so a near-tie may flip, never a clear choice."""
    short, slack = greedy_shortfall(steps, ids), 2 * tolerance(steps)
    far = np.flatnonzero(short > slack)
    assert not far.size, f"steps {far.tolist()} fall {short[far].round(3).tolist()} short, allowed {slack:.3f}"


# A router gap (k-th minus (k+1)-th expert logit) under which 8-bit activations may swap the
# two experts: the Q8_1 rounding of xn moves a router logit by ~1e-2 on the tiny models.
Q8_1_ROUTER_TIE = 0.05


def router_gaps(model, ids) -> np.ndarray:
    """(block_count, positions): each gpt-oss layer's router logit gap between its k-th and
    (k+1)-th expert, recorded around the real route during one prefill of ids."""
    from orcd.reference import KVCache, gpt_oss
    from orcd.reference.ops import matmul
    gaps, route = [], gpt_oss.route

    def recording(h, w, blk, used):
        logits = matmul(h, w[f"{blk}.ffn_gate_inp.weight"], w[f"{blk}.ffn_gate_inp.bias"])
        ranked = np.sort(logits, axis=-1)[:, ::-1]
        gaps.append(ranked[:, used - 1] - ranked[:, used])
        return route(h, w, blk, used)
    gpt_oss.route = recording
    try:
        gpt_oss.forward(model, np.asarray(ids), KVCache(model.config, model.ctx))
    finally:
        gpt_oss.route = route
    return np.array(gaps)

