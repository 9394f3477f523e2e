"""The quantized-weight kernels (cuda/src/matvec.cu, matmul.cu, embed.cu) against orcd.quant's
dequantizer and a float64 product, for every format on the real shapes of SPEC §6. matvec is
checked on both of its paths (ORCD_MATVEC): the integer one against x rounded exactly as its
Q8_1 quantizer rounds it, the plain one against x itself."""
from __future__ import annotations

import numpy as np
import pytest

from orcd import _cuda, quant
from orcd.errors import InternalError
from orcd.quant.activations import dequantize_activations_q8_1, quantize_activations_q8_1

FORMATS = [t.name for t in quant.BLOCKS]
FLOATS = {"F32", "F16", "BF16"}
# rows x cols (GGUF: ne1 x ne0) of the target models' matrices, and two odd small ones.
SHAPES = [(896, 896), (4864, 896), (896, 4864), (151936, 896), (9216, 3072), (3072, 8192),
          (5760, 2880), (201088, 2880), (1000, 512), (33, 256)]
BIG = 1 << 26  # values: float formats are generated only below this (host time, not coverage)
CHECKED_ROWS = 1024  # rows compared on large shapes: every row runs the same code path
MATMUL_N = [1, 7, 16, 128, 512]
MATMUL_BIG_N_VALUES = 1 << 23  # n >= 128 only on matrices up to this many values
MATVEC_PATHS = ["q8_1", "f32"]  # ORCD_MATVEC: the integer path (default) and the plain one


def _cases():
    for name in FORMATS:
        block = quant.BLOCKS[quant.format_of(name).ggml_type][0]
        for rows, cols in SHAPES:
            if cols % block or (name in FLOATS and rows * cols > BIG):
                continue
            yield pytest.param((name, rows, cols), id=f"{name}-{rows}x{cols}")


class Weights:
    def __init__(self, name, rows, cols, rng):
        self.name, self.rows, self.cols = name, rows, cols
        self.type = int(quant.format_of(name).ggml_type)
        self.raw = quant.random_blocks(name, (rows, cols), rng)
        picked = rng.choice(rows, min(rows, CHECKED_ROWS), replace=False)
        self.checked = np.unique(np.concatenate([[0, rows - 1], picked]))
        self.dense = quant.dequantize(self.raw[self.checked], name, (len(self.checked), cols))


@pytest.fixture(scope="module", params=list(_cases()))
def weights(request):
    name, rows, cols = request.param
    return Weights(name, rows, cols, np.random.default_rng(rows * 7 + cols))


def _f32_bound(w, x):
    """|y - y64| allowed for F32 dots of W rows with x. A lane sums runs of 16 as d * sum(q x)
    (+ m * sum(x)), <= cols/512 runs, then 5 shuffle levels: worst case (16 + cols/512 + 9)
    roundings of 2^-24, relative to sum|d q x| + |m| sum|x| <= sum|w x| + 2 |m| sum|x|; the
    affine formats' d q and m cancel, and random blocks keep |m| under 2 max|w|."""
    cols = w.shape[1]
    u = (16 + cols / 512 + 9) * 2.0 ** -24
    w_max = np.abs(w).max(axis=1, keepdims=x.ndim > 1)
    return u * (np.abs(w) @ np.abs(x) + 4 * w_max * np.abs(x).sum(0))


def _x_as_multiplied(x, w, path):
    """The activations the kernel multiplies by: x, or x rounded by the Q8_1 quantizer."""
    if path == "f32" or w.name in FLOATS:
        return x.astype(np.float64)
    q, d, _ = quantize_activations_q8_1(x)
    return dequantize_activations_q8_1(q, d)


@pytest.mark.gpu
@pytest.mark.parametrize("path", MATVEC_PATHS)
def test_matvec_matches_float64_product(weights, path, monkeypatch):
    monkeypatch.setenv("ORCD_MATVEC", path)
    w = weights
    x = np.random.default_rng(1).standard_normal(w.cols).astype(np.float32)
    y = _cuda.matvec(w.type, w.raw, x, w.rows, w.cols)
    xm = _x_as_multiplied(x, w, path)
    ref = w.dense.astype(np.float64) @ xm
    # The integer path's block dots are exact integers; what is left is F32 rounding of the
    # scales and the sums, within the plain path's bound.
    assert np.all(np.abs(y[w.checked] - ref) <= _f32_bound(w.dense, xm))


@pytest.mark.gpu
def test_matvec_integer_path_is_close_to_the_unrounded_product(weights, monkeypatch):
    monkeypatch.setenv("ORCD_MATVEC", "q8_1")
    w = weights
    if w.name in FLOATS:
        pytest.skip("float weights always take the plain path")
    x = np.random.default_rng(3).standard_normal(w.cols).astype(np.float32)
    y = _cuda.matvec(w.type, w.raw, x, w.rows, w.cols)
    ref = w.dense.astype(np.float64) @ x.astype(np.float64)
    # 8-bit activations: each x moves by at most half a step d = max|x of its block| / 127
    # (x * (1 / d) rounds by about 2^-16 d more, hence the margin), on top of the F32 bound.
    step = np.repeat(np.abs(x.reshape(-1, 32)).max(1) / 127.0, 32)
    rounding = np.abs(w.dense) @ (0.5 * (1 + 2.0 ** -10) * step)
    assert np.all(np.abs(y[w.checked] - ref) <= rounding + _f32_bound(w.dense, x))


@pytest.mark.gpu
@pytest.mark.parametrize("path", MATVEC_PATHS)
def test_matvec_is_bit_identical_run_to_run(weights, path, monkeypatch):
    monkeypatch.setenv("ORCD_MATVEC", path)
    w = weights
    x = np.random.default_rng(2).standard_normal(w.cols).astype(np.float32)
    runs = [_cuda.matvec(w.type, w.raw, x, w.rows, w.cols).view(np.uint32) for _ in range(2)]
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.gpu
def test_matvec_rejects_an_unknown_path(monkeypatch):
    monkeypatch.setenv("ORCD_MATVEC", "int4")
    raw = quant.random_blocks("Q8_0", (4, 64), np.random.default_rng(0))
    with pytest.raises(InternalError, match="ORCD_MATVEC=int4: use f32"):
        _cuda.matvec(int(quant.format_of("Q8_0").ggml_type), raw, np.zeros(64, np.float32), 4, 64)


@pytest.mark.gpu
@pytest.mark.parametrize("n", MATMUL_N)
def test_matmul_matches_float64_product(weights, n):
    w = weights
    if n >= 128 and w.rows * w.cols > MATMUL_BIG_N_VALUES:
        pytest.skip("large n is checked on the smaller matrices (float64 reference time)")
    x = np.random.default_rng(n).standard_normal((n, w.cols)).astype(np.float32)
    y = _cuda.matmul(w.type, w.raw, x, w.rows, w.cols)
    ref = x.astype(np.float64) @ w.dense.T.astype(np.float64)
    # Tensor cores take F16 inputs: each of w and x rounds by <= 2^-11 relative (2^-25 absolute
    # below F16's normal range), products are exact, sums in F32 (bound as in matvec).
    f16 = 2.0 ** -10 * (np.abs(x) @ np.abs(w.dense.T)) + 2.0 ** -24 * (
        np.abs(x).sum(1, keepdims=True) + np.abs(w.dense).sum(1))
    assert y.shape == (n, w.rows)
    assert np.all(np.abs(y[:, w.checked] - ref) <= f16 + _f32_bound(w.dense, x.T).T)


@pytest.mark.gpu
def test_matmul_rows_are_the_same_bits_split_or_not(weights):
    """SPEC §8 with the prompt cache: a prompt's last rows prefilled alone (the column splits on
    blocks of their own, few tiles) equal the same rows of the whole prompt (one block walking
    every split), bit for bit, as do whole products forced either way (the splits' sums met in
    a cluster on sm_90, its blocks loading their split at once or walking it in steps, or
    through global memory, or unsplit in wide tiles of 128 x 128, dequantized as they load or
    from W in F16, whole or in slabs of rows, multiplied by wgmma where built or by mma.sync,
    wgmma's splits on blocks of their own or not)."""
    w = weights
    if w.rows * w.cols > MATMUL_BIG_N_VALUES:
        pytest.skip("checked on the smaller matrices (every format and split count is there)")
    x = np.random.default_rng(5).standard_normal((70, w.cols)).astype(np.float32)
    never, always, through_memory, in_steps, wide, dense, slabs, mma_sync = (
        _cuda.matmul(w.type, w.raw, x, w.rows, w.cols, split).view(np.uint32)
        for split in (0, 1, 2, 3, 4, 5, 6, 7))
    assert np.array_equal(never, always)
    assert np.array_equal(never, through_memory)
    assert np.array_equal(never, in_steps)
    assert np.array_equal(never, wide)
    assert np.array_equal(never, dense)
    assert np.array_equal(never, slabs)  # 896 and 4,864 rows: a short last slab of 384
    assert np.array_equal(never, mma_sync)  # on sm_90a, dense and slabs took wgmma
    longer = np.random.default_rng(6).standard_normal((150, w.cols)).astype(np.float32)
    unsplit = _cuda.matmul(w.type, w.raw, longer, w.rows, w.cols, 0).view(np.uint32)
    for split in (-1, 4, 5, 6, 7):  # -1 on wgmma: a tile's splits shared out over blocks
        assert np.array_equal(
            _cuda.matmul(w.type, w.raw, longer, w.rows, w.cols, split).view(np.uint32), unsplit)
    for tail in (2, 31):
        alone = _cuda.matmul(w.type, w.raw, x[-tail:], w.rows, w.cols).view(np.uint32)
        assert np.array_equal(alone, never[-tail:])


@pytest.mark.gpu
def test_matmul_rejects_an_unknown_split():
    raw = quant.random_blocks("Q8_0", (4, 64), np.random.default_rng(0))
    with pytest.raises(InternalError, match="matmul split 8"):
        _cuda.matmul(int(quant.format_of("Q8_0").ggml_type), raw, np.zeros((2, 64), np.float32),
                     4, 64, 8)


@pytest.mark.gpu
def test_embed_rows_are_the_dequantized_rows_exactly(weights):
    w = weights
    ids = np.concatenate([w.checked[:64], w.checked[:3]]).astype(np.int32)  # repeats too
    out = _cuda.embed(w.type, w.raw, ids, w.rows, w.cols)
    where = np.searchsorted(w.checked, ids)
    assert np.array_equal(out.view(np.uint32), w.dense[where].view(np.uint32))


@pytest.mark.gpu
def test_embed_rejects_an_id_outside_the_matrix():
    raw = quant.random_blocks("Q8_0", (4, 64), np.random.default_rng(0))
    with pytest.raises(InternalError, match="token id 4 is not a row of 4"):
        _cuda.embed(int(quant.format_of("Q8_0").ggml_type), raw, [0, 4], 4, 64)


@pytest.mark.parametrize("ggml_type", list(quant.BLOCKS), ids=lambda t: t.name)
def test_block_layout_agrees_with_orcd_quant(ggml_type):
    assert _cuda.block_layout(int(ggml_type)) == quant.BLOCKS[ggml_type]


def test_unknown_format_is_rejected():
    with pytest.raises(InternalError, match="unsupported weight format: ggml type 5"):
        _cuda.block_layout(5)


@pytest.mark.gpu
def test_wrong_weight_size_is_rejected():
    raw = quant.random_blocks("Q4_0", (4, 64), np.random.default_rng(0))
    with pytest.raises(InternalError, match="take 144 bytes, got 126"):
        _cuda.matvec(int(quant.format_of("Q4_0").ggml_type), raw.reshape(-1)[:126],
                     np.zeros(64, np.float32), 4, 64)
