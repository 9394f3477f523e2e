"""The scale searches of ggml's K-quant reference quantizers (ggml-quants.c), vectorized:
each row of `x` is one sub-block, and every C loop over its elements becomes an operation on
all rows at once, in the same float32 order of operations."""
from __future__ import annotations

import numpy as np

from .block import F32, nearest_int, seqsum

GROUP_MAX_EPS = F32(1e-15)


def _levels(iscale, x, lo, nmax):
    return np.clip(nearest_int(iscale[:, None] * (x - lo[:, None])), 0, nmax).astype(F32)


def _weighted_error(w, scale, lo, levels, x):
    diff = scale[:, None] * levels + lo[:, None] - x
    return seqsum(w * (diff * diff))


def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    """Affine levels x ~ scale*L - the_min, L in [0, nmax], minimising the w-weighted squared
    error over nstep+1 trial scales. Returns (scale, the_min, L) per row."""
    hi, lo = x.max(-1), np.minimum(x.min(-1), F32(0))
    flat = hi == lo  # all x equal lo: ggml returns at once; here every trial has det == 0
    hi = np.where(flat, lo + F32(1), hi)
    sum_w, sum_x = seqsum(w), seqsum(w * x)
    iscale = F32(nmax) / (hi - lo)
    scale = F32(1) / iscale
    levels = _levels(iscale, x, lo, nmax)
    best = _weighted_error(w, scale, lo, levels, x)
    for step in range(nstep + 1):
        # lo is the best offset so far, as ggml's `min` which the loop updates
        iscale = (F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / (hi - lo)
        trial = _levels(iscale, x, lo, nmax)
        sum_l, sum_l2 = seqsum(w * trial), seqsum(w * trial * trial)
        sum_xl = seqsum(w * trial * x)
        det = sum_w * sum_l2 - sum_l * sum_l
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
        positive_min = this_min > 0  # a positive offset is not representable: refit scale only
        this_scale = np.where(positive_min, sum_xl / sum_l2, this_scale)
        this_min = np.where(positive_min, F32(0), this_min)
        err = _weighted_error(w, this_scale, this_min, trial, x)
        better = (det > 0) & (err < best)
        levels = np.where(better[:, None], trial, levels)
        best = np.where(better, err, best)
        scale = np.where(better, this_scale, scale)
        lo = np.where(better, this_min, lo)
    scale = np.where(flat, F32(0), scale)
    levels[flat] = 0
    return scale, -lo, levels.astype(np.uint8)


def _signed_levels(iscale, x, nmax):
    return np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1).astype(F32)


def make_qx_quants(x, nmax):
    """Symmetric levels x ~ scale*(L - nmax), L in [0, 2*nmax), weights x**2 (rmse_type 1),
    trying 19 scales around -nmax/max. Returns (scale, L) per row."""
    signed_max = np.take_along_axis(x, np.abs(x).argmax(-1)[:, None], -1)[:, 0]
    zero = np.abs(signed_max) < GROUP_MAX_EPS
    w = x * x
    levels = _signed_levels(F32(-nmax) / signed_max, x, nmax)
    sum_lx, sum_l2 = seqsum(w * x * levels), seqsum(w * levels * levels)
    scale = np.where(sum_l2 != 0, sum_lx / sum_l2, F32(0))
    best = scale * sum_lx
    for step in (*range(-9, 0), *range(1, 10)):
        trial = _signed_levels(-(F32(nmax) + F32(0.1) * F32(step)) / signed_max, x, nmax)
        sum_lx, sum_l2 = seqsum(w * x * trial), seqsum(w * trial * trial)
        better = (sum_l2 > 0) & (sum_lx * sum_lx > best * sum_l2)
        levels = np.where(better[:, None], trial, levels)
        scale = np.where(better, sum_lx / sum_l2, scale)
        best = np.where(better, scale * sum_lx, best)
    scale = np.where(zero, F32(0), scale)
    levels = np.where(zero[:, None], F32(0), levels + F32(nmax))
    return scale, levels.astype(np.uint8)
