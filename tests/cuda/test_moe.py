"""The mixture-of-experts layer (cuda/src/moe.cu) against orcd.reference.gpt_oss.moe in float64,
on random experts of every weight format: one token (the decode path: integer dots with Q8_1
activations) and 2 to 300 tokens (the prefill path: experts' gathered rows on F16 tensor
cores, wgmma on Hopper and mma.sync before it), tiny shapes and GPT-OSS-20B's. Two
tolerances: a rigorous bound propagated through the layer from the path's roundings (tight on
small shapes, loose on real ones, where sums of thousands of terms cancel), and a relative one
against the layer computed with exactly the path's roundings (_simulated). Tests without a
GPU check that both catch a wrong expert, a missing bias or a missing clamp, and that the bound
holds for the simulated roundings."""
from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np
import pytest

from orcd import quant
from orcd.bench import kernels
from orcd.quant.activations import dequantize_activations_q8_1, quantize_activations_q8_1
from orcd.reference import gpt_oss

BLK = "blk.0"
U = 2.0 ** -24  # F32 unit roundoff
SIGMOID_GLU_SLOPE = 1.1  # max |d/dg g·σ(1.702 g)| (1.0998 at g ≈ 1.41)
INTEGER = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "MXFP4"}
SMALL_FORMATS = ["MXFP4", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16", "F32"]
K_FORMATS = ["Q4_K", "Q5_K", "Q6_K"]
TOKENS = [1, 2, 7, 64, 300]
# |GPU - _simulated| per token, relative to the layer's output: the kernels round activations
# (and prefill's weights) as _simulated does; left are F32 sum orders (~1e-6) and hidden values
# rounded the other way, each one Q8_1 step (1/127 of its block's max) or F16 ulp on one
# column: relative noise of 1e-4 on every activation moves GPT-OSS-20B's layer by 3e-3.
PATH_TOLERANCE = 1e-2


class Experts:
    """One layer's router and experts: GGUF bytes for the GPU, float64 for the reference."""

    def __init__(self, d, ff, experts, used, gate_up, down, seed):
        rng = np.random.default_rng(seed)
        self.d, self.ff, self.experts, self.used = d, ff, experts, used
        self.types = {"gate": gate_up, "up": gate_up, "down": down}
        shapes = {"gate": (experts, ff, d), "up": (experts, ff, d), "down": (experts, d, ff)}
        self.raw = {k: quant.random_blocks(self.types[k], s, rng) for k, s in shapes.items()}
        # Biases of a few units put gate and up past the clamp at +-7 now and then.
        self.bias = {k: rng.normal(0.0, 4.0, s[:2]).astype(np.float32) for k, s in shapes.items()}
        self.bias["down"] *= np.float32(0.25)
        self.router_w = (rng.standard_normal((experts, d)) / np.sqrt(d)).astype(np.float32)
        self.router_b = rng.standard_normal(experts).astype(np.float32)

    def dense(self, kind, e):
        rows, cols = (self.d, self.ff) if kind == "down" else (self.ff, self.d)
        dense = quant.dequantize(self.raw[kind][e], self.types[kind], (rows, cols))
        return dense.astype(np.float64)

    def tensors(self):
        """The reference's tensor dict; experts dequantized when the reference asks for one."""
        t = {f"{BLK}.ffn_gate_inp.weight": self.router_w.astype(np.float64),
             f"{BLK}.ffn_gate_inp.bias": self.router_b.astype(np.float64)}
        for kind in ("gate", "up", "down"):
            t[f"{BLK}.ffn_{kind}_exps.weight"] = _Lazy(self, kind)
            t[f"{BLK}.ffn_{kind}_exps.bias"] = self.bias[kind].astype(np.float64)
        return t

    def layer(self):
        from orcd import _cuda
        ggml = {k: int(quant.format_of(t).ggml_type) for k, t in self.types.items()}
        return _cuda.MoeLayer(self.router_w, self.router_b, ggml["gate"], self.raw["gate"],
                              self.raw["up"], self.bias["gate"], self.bias["up"], ggml["down"],
                              self.raw["down"], self.bias["down"], self.used)

    def run(self, xn, x):
        return self.layer().moe(xn, x)

    def decode_path(self, n):
        return n == 1 and all(t in INTEGER for t in self.types.values())


class _Lazy:
    def __init__(self, experts, kind):
        self.experts, self.kind = experts, kind

    def __getitem__(self, e):
        return self.experts.dense(self.kind, e)


def _q8_1_rounding(v):
    """|v - v as Q8_1| per element: half a step of max|block| / 127 (x * (1/d) rounds by about
    2^-16 d more, hence the margin)."""
    step = np.abs(v.reshape(*v.shape[:-1], -1, 32)).max(-1, keepdims=True) / 127.0
    return np.broadcast_to(0.5 * (1 + 2.0 ** -10) * step, v.shape[:-1] + (v.shape[-1] // 32, 32)
                           ).reshape(v.shape)


def _product_error(w, v, dv, decode):
    """Bound on |W v' - W v| of the GPU's product of rows v' (|v' - v| <= dv) with W: Q8_1
    rounding of v' (decode), or F16 rounding of v' and of W (prefill, 2^-11 relative each,
    2^-25 absolute below F16's normal range); plus F32 sums of cols terms (cols + 16 roundings)."""
    aw = np.abs(w)
    av = np.abs(v) + dv
    if decode:
        rounding = (_q8_1_rounding(av) + dv) @ aw.T
    else:
        rounding = dv @ aw.T + 2.0 ** -10 * (av @ aw.T) + 2.0 ** -24 * (
            av.sum(-1, keepdims=True) + aw.sum(1))
    return rounding + (w.shape[1] + 16) * U * (av @ aw.T)


def _swiglu_error(g, u, dg, du):
    """Bound on |swiglu_oai(g', u') - swiglu_oai(g, u)|: the clamps are 1-Lipschitz, g·σ(αg)
    has slope <= 1.1 and |value| <= |g| (so <= 7 after the clamp), (u + 1) is at most 8; plus
    a few F32 roundings (bias add, exp, divide, multiply)."""
    gc = np.minimum(g, 7.0)
    uc = np.clip(u, -7.0, 7.0)
    glu = np.abs(gc / (1.0 + np.exp(-1.702 * gc)))
    err = SIGMOID_GLU_SLOPE * dg * (np.abs(uc) + 1 + du) + (glu + SIGMOID_GLU_SLOPE * dg) * du
    return err + 16 * U * (np.abs(gc) + 1) * (np.abs(uc) + 1)


def expected_and_bound(m: Experts, xn, x, decode):
    """x + moe(xn) in float64 by the reference, and a bound on the GPU's distance from it."""
    xn64, w = xn.astype(np.float64), m.tensors()
    want = x.astype(np.float64) + gpt_oss.moe(xn64, w, BLK, m.used)
    chosen, weights = gpt_oss.route(xn64, w, BLK, m.used)
    # Router logits: F32 dots of d terms and a bias; the softmax moves by at most twice the
    # largest logit error (relative), plus a few roundings of exp and the divide.
    logit_err = (m.d + 16) * U * (np.abs(xn64) @ np.abs(m.router_w.T) + np.abs(m.router_b))
    weight_err = weights * (2 * logit_err.max(1, keepdims=True) + 8 * U)
    bound = np.zeros_like(want)
    for e in np.unique(chosen):
        rows, slot = np.nonzero(chosen == e)
        v, zero = xn64[rows], np.zeros((len(rows), m.d))
        wg, wu, wd = m.dense("gate", e), m.dense("up", e), m.dense("down", e)
        g = v @ wg.T + m.bias["gate"][e]
        u = v @ wu.T + m.bias["up"][e]
        dh = _swiglu_error(g, u, _product_error(wg, v, zero, decode),
                           _product_error(wu, v, zero, decode))
        h = gpt_oss.swiglu_oai(g, u)
        y = h @ wd.T + m.bias["down"][e]
        dy = _product_error(wd, h, dh, decode) + 2 * U * np.abs(y)
        bound[rows] += weights[rows, slot, None] * dy + weight_err[rows, slot, None] * np.abs(y)
    # The combine's F32 sum over the slots and the residual add.
    return want, bound + (m.used + 2) * U * (np.abs(want - x) + np.abs(want)) + 1e-30


def _inputs(m: Experts, n, seed):
    rng = np.random.default_rng(seed)
    xn = rng.standard_normal((n, m.d)).astype(np.float32)
    return xn, rng.standard_normal((n, m.d)).astype(np.float32)


def _off_the_path(m: Experts, xn, x, got, decode):
    """Tokens where got is not the layer with the path's roundings, within PATH_TOLERANCE."""
    sim = _simulated(m, xn, x, decode)
    return np.linalg.norm(got - sim, axis=1) > PATH_TOLERANCE * np.linalg.norm(sim - x, axis=1)


def _check(m: Experts, xn, x, got):
    decode = m.decode_path(len(xn))
    want, bound = expected_and_bound(m, xn, x, decode)
    assert np.all(np.abs(got - want) <= bound)
    assert not np.any(_off_the_path(m, xn, x, got, decode))


def _cases():
    for name in SMALL_FORMATS:
        for n in TOKENS:
            yield pytest.param((64, 64, 4, 2, name, name, n), id=f"{name}-64x64-4top2-n{n}")
    for name in K_FORMATS:
        for n in (1, 7, 300):
            yield pytest.param((256, 512, 8, 2, name, name, n), id=f"{name}-256x512-8top2-n{n}")
    for gate_up, down in (("MXFP4", "Q8_0"), ("Q4_K", "MXFP4"), ("F16", "Q8_0")):
        for n in (1, 64):
            yield pytest.param((256, 256, 6, 3, gate_up, down, n),
                               id=f"{gate_up}+{down}-256x256-6top3-n{n}")
    for name in ("MXFP4", "Q8_0"):
        for n in (1, 300):
            yield pytest.param((96, 160, 6, 3, name, name, n), id=f"{name}-96x160-6top3-n{n}")


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(_cases()))
def test_moe_matches_the_reference(case):
    d, ff, experts, used, gate_up, down, n = case
    m = Experts(d, ff, experts, used, gate_up, down, seed=d + ff + experts)
    xn, x = _inputs(m, n, seed=n)
    _check(m, xn, x, m.run(xn, x))


@pytest.mark.gpu
@pytest.mark.parametrize("case", [(96, 160, 6, 3, "MXFP4", "MXFP4", 300),
                                  (256, 512, 8, 2, "Q4_K", "Q6_K", 300),
                                  (256, 256, 6, 3, "F16", "Q8_0", 64)],
                         ids=lambda c: f"{c[4]}+{c[5]}-{c[0]}x{c[1]}-n{c[6]}")
def test_moe_prefill_on_mma_sync_matches_the_reference(case, monkeypatch):
    """ORCD_WGMMA=0: the experts' products on mma.sync, the path of GPUs before Hopper (the
    default takes wgmma on an H100/H200), held to the same tolerances."""
    monkeypatch.setenv("ORCD_WGMMA", "0")
    d, ff, experts, used, gate_up, down, n = case
    m = Experts(d, ff, experts, used, gate_up, down, seed=d + ff + experts)
    xn, x = _inputs(m, n, seed=n)
    _check(m, xn, x, m.run(xn, x))


@pytest.fixture(scope="module")
def gpt_oss_20b():
    """One layer of GPT-OSS-20B's shape: d = ff = 2880, 32 experts, top 4, MXFP4."""
    return Experts(2880, 2880, 32, 4, "MXFP4", "MXFP4", seed=20)


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1, 2])  # 2: the prefill path; each token reads 4 of 32 experts
def test_moe_matches_the_reference_at_the_real_shape(gpt_oss_20b, n):
    xn, x = _inputs(gpt_oss_20b, n, seed=n)
    _check(gpt_oss_20b, xn, x, gpt_oss_20b.run(xn, x))


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1, 64])
def test_moe_is_bit_identical_run_to_run(n):
    m = Experts(256, 256, 8, 4, "MXFP4", "MXFP4", seed=5)
    xn, x = _inputs(m, n, seed=3)
    assert np.array_equal(m.run(xn, x).view(np.uint32), m.run(xn, x).view(np.uint32))


def _tied(m: Experts):
    """Experts 0, 2 and 3 share their router row and bias, far above the rest: top 2 must take
    0 and 2 (ties go to the lower id), never 3."""
    m.router_w[[2, 3]] = m.router_w[0]
    m.router_b[[0, 2, 3]] = 50.0
    return m


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1, 64])
def test_router_ties_go_to_the_lower_expert(n):
    m = _tied(Experts(64, 64, 4, 2, "MXFP4", "MXFP4", seed=8))
    xn, x = _inputs(m, n, seed=4)
    _check(m, xn, x, m.run(xn, x))


@pytest.mark.gpu
@pytest.mark.parametrize("d, used, match", [(48, 2, "multiples of 32"),
                                            (64, 5, "5 of 4 experts")])
def test_moe_rejects_bad_shapes(d, used, match):
    from orcd.errors import InternalError
    m = Experts(d, 64, 4, 2, "F32", "F32", seed=1)
    m.used = used
    xn, x = _inputs(m, 1, seed=1)
    with pytest.raises(InternalError, match=match):
        m.run(xn, x)


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("fault", ["wrong expert", "missing bias", "missing clamp"])
@pytest.mark.parametrize("shape", [(64, 64, 4, 2), (512, 512, 8, 4)], ids=["64", "512"])
def test_the_tolerances_catch_a_broken_layer(decode, fault, shape, monkeypatch):
    """The tolerances can fail: the reference with one fault lands outside the path tolerance
    and, on the small shape, outside the bound."""
    m = Experts(*shape, "MXFP4", "MXFP4", seed=sum(shape))
    xn, x = _inputs(m, 7, seed=7)
    want, bound = expected_and_bound(m, xn, x, decode)
    faulty = copy.deepcopy(m)
    if fault == "wrong expert":
        faulty.router_b[:] = m.router_b[::-1]
    elif fault == "missing bias":
        faulty.bias["down"][:] = 0.0
    else:
        monkeypatch.setattr(gpt_oss, "SWIGLU_LIMIT", np.inf)
    broken = x.astype(np.float64) + gpt_oss.moe(xn.astype(np.float64), faulty.tensors(), BLK,
                                                m.used)
    monkeypatch.undo()
    assert np.any(_off_the_path(m, xn, x, broken, decode))
    if shape[0] == 64:
        assert np.any(np.abs(broken - want) > bound)


def _rounded(v, decode):
    """v as the path's kernels multiply by it: Q8_1 per token (decode), or F16 (prefill)."""
    if not decode:
        return v.astype(np.float16).astype(np.float64)
    rows = [dequantize_activations_q8_1(*quantize_activations_q8_1(r)[:2]) for r in
            v.astype(np.float32)]
    return np.array(rows)


def _simulated(m: Experts, xn, x, decode):
    """x + moe(xn) with the path's roundings of activations (and, prefill, of weights)."""
    xn64, w = xn.astype(np.float64), m.tensors()
    chosen, weights = gpt_oss.route(xn64, w, BLK, m.used)
    out = x.astype(np.float64)
    def weight(a):  # prefill's tiles hold W in F16 too
        return a if decode else _rounded(a, False)
    for e in np.unique(chosen):
        rows, slot = np.nonzero(chosen == e)
        v = _rounded(xn64[rows], decode)
        g = v @ weight(m.dense("gate", e)).T + m.bias["gate"][e]
        u = v @ weight(m.dense("up", e)).T + m.bias["up"][e]
        h = _rounded(gpt_oss.swiglu_oai(g, u), decode)
        out[rows] += weights[rows, slot, None] * (h @ weight(m.dense("down", e)).T +
                                                  m.bias["down"][e])
    return out


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("name", ["MXFP4", "Q4_0", "F32"])
def test_the_bound_holds_for_the_paths_roundings(decode, name):
    """The tolerance is not too tight: the layer computed with the path's roundings of its
    activations lies within it."""
    m = Experts(64, 64, 4, 2, name, name, seed=11)
    xn, x = _inputs(m, 1 if decode else 64, seed=9)
    want, bound = expected_and_bound(m, xn, x, decode)
    assert np.all(np.abs(_simulated(m, xn, x, decode) - want) <= bound)


@pytest.mark.gpu
@pytest.mark.parametrize("n", kernels.MOE_N)
def test_bench_moe_mxfp4(benchmark, n):
    """`orcd bench kernels --ops moe`: bytes read per second at GPT-OSS-20B's shape."""
    from orcd import _cuda
    model, tensor, d, ff = kernels.MOE
    row = benchmark.pedantic(kernels.measure, args=("moe", "MXFP4", model, tensor, d, ff, n,
                                                    _cuda.copy_bandwidth(), 200), rounds=3)
    benchmark.extra_info.update(asdict(row))
    assert row.seconds > 0 and row.bandwidth == pytest.approx(row.weight_bytes / row.seconds)


def test_bench_moe_counts_the_chosen_experts_once():
    one_expert = 3 * 2880 * quant.row_bytes("MXFP4", 2880) + 4 * 3 * 2880
    router = 4 * 32 * 2881
    assert kernels.moe_bytes("MXFP4", 2880, 2880, 1) == 4 * one_expert + router
    assert kernels.moe_bytes("MXFP4", 2880, 2880, 512) == 32 * one_expert + router
    assert ("moe", "MXFP4", *kernels.MOE, 1) in list(kernels.cases(["MXFP4"], {"moe"}))
