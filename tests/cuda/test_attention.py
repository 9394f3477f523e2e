"""The attention kernels (cuda/src/attention.cu, attention_prefill.cu) against
orcd.reference.ops.attention with sinks: decode on both of its paths and prefill, with and
without a sliding window and sinks, on random data whose keys and values are rounded to FP16
first, as the cache holds them. The keys a call must not read (before the first query's window,
after the last query) are NaN on the GPU's side, so reading one shows in the output."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from orcd import _cuda
from orcd.reference.ops import attention

# heads, kv_heads, head_dim: gpt-oss's attention, and the other GQA and head sizes around it
SHAPES = [(64, 8, 64), (8, 2, 128), (64, 8, 128), (8, 2, 64)]
DECODE_POSITIONS = [0, 5, 127, 128, 300, 1000]
# 200: the window's first split starts off a 128 boundary and a second one follows
WINDOWS = [0, 8, 128, 200]
DECODE_PATHS = ["decode", "decode_one_launch"]
# past 32 splits the one-launch kernel's blocks take several splits each; 20000: a window far in
LONG_DECODES = [(5000, 0), (5000, 4200), (5000, 128), (20000, 128)]
PREFILL_N = [1, 2, 15, 16, 17, 33, 100, 300]  # around the 16-query tiles and 32-key chunks
PREFILL_POS0 = [0, 7, 200]
# The tensor-core prefill (head_dim a multiple of 16) on the real models' head sizes: Qwen2.5's
# 14 q heads over 2 kv heads (GQA 7), Phi-3's 96. n around its 64-query tiles; at 2500 a tile
# walks ~10 segments of 256 keys, and few tiles split them over blocks (2, 3, 31, 64 queries).
FLASH_SHAPES = [(14, 2, 64), (4, 4, 96)]
FLASH_N = [2, 3, 31, 64, 65, 300]
FLASH_POS0 = [0, 2500]
FLASH_VARIANTS = [(0, False), (200, True)]  # (window, sinks)
FUTURE_KEYS = 3  # cache rows after the last query: written, and never to be read
# float32 scores, exponentials and sums over up to ~5000 keys in another order than NumPy's:
# a few 1e-6 of sum(p |v|) in practice; 1e-4 leaves room and stays >= 10x below the change one
# key at a window's edge or a missing sink makes (test_cases_tell_... checks that).
RTOL = 1e-4


class Case:
    """Queries at positions pos0.. over FP16-rounded keys and values of positions
    0..pos0 + n + FUTURE_KEYS - 1, with sinks or none."""

    def __init__(self, shape, n, pos0, window, sinks, seed):
        heads, kv_heads, head_dim = shape
        rng = np.random.default_rng(seed)
        keys = pos0 + n + FUTURE_KEYS
        self.n, self.pos0, self.window = n, pos0, window
        self.q = rng.standard_normal((n, heads, head_dim), np.float32)
        self.k, self.v = (rng.standard_normal((keys, kv_heads, head_dim), np.float32)
                          .astype(np.float16).astype(np.float32) for _ in range(2))
        # sink logits 2..6: from under 1% of a head's mass over 1000 keys to most of it over 8
        self.sinks = rng.uniform(2.0, 6.0, heads).astype(np.float32) if sinks else None

    def reference(self, window=None, sinks=True, v=None):
        """The reference attention of the case, or with another window, no sinks, other values."""
        window = self.window if window is None else window
        no_sinks = np.full(self.q.shape[1], -np.inf, np.float32)
        s = self.sinks if sinks and self.sinks is not None else no_sinks
        v = self.v if v is None else v
        positions = self.pos0 + np.arange(self.n)
        return attention(self.q, self.k.transpose(1, 0, 2), v.transpose(1, 0, 2), positions, s,
                         window)

    def tolerance(self):
        """RTOL of sum(p |v|): the reference with |v| (p >= 0)."""
        return RTOL * self.reference(v=np.abs(self.v))

    def gpu_cache(self):
        """k, v with NaN at the positions no query of the case may read."""
        first = max(0, self.pos0 - self.window + 1) if self.window else 0
        k, v = self.k.copy(), self.v.copy()
        for x in k, v:
            x[:first] = np.nan
            x[self.pos0 + self.n:] = np.nan
        return k, v


def _decode_cases():
    for shape in SHAPES:
        for pos in DECODE_POSITIONS:
            for window in WINDOWS:
                for sinks in (False, True):
                    yield pytest.param((shape, 1, pos, window, sinks),
                                       id=f"{shape}-pos{pos}-w{window}-sinks{int(sinks)}")
    for pos, window in LONG_DECODES:
        for shape in SHAPES[:2]:
            yield pytest.param((shape, 1, pos, window, True), id=f"{shape}-pos{pos}-w{window}")


def _prefill_cases():
    for shape in SHAPES[:2]:
        for n in PREFILL_N:
            for pos0 in PREFILL_POS0:
                for window in WINDOWS:
                    for sinks in (False, True):
                        yield pytest.param(
                            (shape, n, pos0, window, sinks),
                            id=f"{shape}-n{n}-pos{pos0}-w{window}-sinks{int(sinks)}")


def _flash_prefill_cases():
    for shape in FLASH_SHAPES:
        for n in FLASH_N:
            for pos0 in FLASH_POS0:
                for window, sinks in FLASH_VARIANTS:
                    yield pytest.param(
                        (shape, n, pos0, window, sinks),
                        id=f"{shape}-n{n}-pos{pos0}-w{window}-sinks{int(sinks)}")


def _case(params):
    shape, n, pos0, window, sinks = params
    return Case(shape, n, pos0, window, sinks, seed=zlib.crc32(repr(params).encode()))


def _gpu_attention(case, path):
    k, v = case.gpu_cache()
    return _cuda.attention(case.q, k, v, pos0=case.pos0, window=case.window, sinks=case.sinks,
                           path=path)


@pytest.mark.gpu
@pytest.mark.parametrize("path", DECODE_PATHS)
@pytest.mark.parametrize("params", list(_decode_cases()))
def test_decode_matches_attention_with_sinks(params, path):
    case = _case(params)
    out = _gpu_attention(case, path)
    assert np.all(np.abs(out - case.reference()) <= case.tolerance())


@pytest.mark.gpu
@pytest.mark.parametrize("params", list(_prefill_cases()) + list(_flash_prefill_cases()))
def test_prefill_matches_attention_with_sinks(params):
    case = _case(params)
    out = _gpu_attention(case, "prefill")
    assert np.all(np.abs(out - case.reference()) <= case.tolerance())


@pytest.mark.gpu
@pytest.mark.parametrize("path", DECODE_PATHS + ["prefill"])
def test_attention_is_bit_identical_run_to_run(path):
    n = 1 if path != "prefill" else 40
    case = Case(SHAPES[0], n, 5000, 0, True, seed=7)
    runs = [_gpu_attention(case, path).view(np.uint32) for _ in range(2)]
    assert np.array_equal(runs[0], runs[1])


# (shape, n, pos0, window): 300 queries at 2500 take the whole path (their split partials would
# not fit the 64 queries' worth the test entry allocates); their last 2 or 31 alone take the
# split one (14 heads x 1 tile leave most SMs idle), with other tiles and chunk walks. 64
# queries split too, as one tile of other rows.
OVERLAPS = [((14, 2, 64), 300, 2500, 0), ((14, 2, 64), 300, 2500, 200), ((4, 4, 96), 300, 2500, 0),
            ((14, 2, 64), 64, 2500, 0)]


@pytest.mark.gpu
@pytest.mark.parametrize("tail", [2, 31])
@pytest.mark.parametrize("overlap", OVERLAPS, ids=str)
def test_prefill_rows_are_bit_identical_in_any_call(overlap, tail):
    """SPEC §8: the prompt cache recomputes a prefilled prompt's last rows alone; they must be
    the same bits as when the whole prompt was prefilled."""
    shape, n, pos0, window = overlap
    case = Case(shape, n, pos0, window, True, seed=11)
    k, v = case.gpu_cache()
    whole = _cuda.attention(case.q, k, v, pos0=pos0, window=window, sinks=case.sinks)
    last = _cuda.attention(case.q[n - tail:], k, v, pos0=pos0 + n - tail, window=window,
                           sinks=case.sinks)
    assert np.array_equal(whole[n - tail:].view(np.uint32), last.view(np.uint32))


def _edge_changes(case):
    """The references a kernel would match with its window one key short or long (where that
    changes what the last query sees) or without its sinks."""
    last = case.pos0 + case.n - 1
    if case.window > 1 and last >= case.window - 1:
        yield "window - 1", case.reference(window=case.window - 1)
    if case.window and last >= case.window:
        yield "window + 1", case.reference(window=case.window + 1)
    if case.sinks is not None:
        yield "no sinks", case.reference(sinks=False)


@pytest.mark.parametrize("params", list(_decode_cases()) + list(_prefill_cases()) +
                         list(_flash_prefill_cases()))
def test_cases_tell_wrong_windows_and_missing_sinks_apart(params):
    """The GPU tests' data is such that a window off by one or a sink left out fails them: the
    reference moves by more than 10x the tolerance somewhere."""
    case = _case(params)
    ref, tol = case.reference(), case.tolerance()
    for change, wrong in _edge_changes(case):
        assert np.any(np.abs(wrong - ref) > 10 * tol), change
