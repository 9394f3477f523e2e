"""cuda/src/decode_plan.cu compiled for the host (tests/cuda/plan_host.cu): the persistent
decode kernel's chunks of weight rows for the shapes of the targets' ops, on any machine. Every
block's chunks cover its share of the op's pairs in order; each chunk's pieces are whole 16-byte
units that fit a slot and do not overlap; every row of every pair lies whole in the piece where
the kernel looks for it; the count stays within what the VRAM estimate allows (max_chunks). The
GPU tests (tests/cuda/test_engine.py, fused=persistent) check the products made from them."""
from __future__ import annotations

import ctypes

import pytest

# ggml types (cuda/src/quant.cuh)
Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K = 2, 3, 6, 8, 12, 14
QKV, SWIGLU, RESIDUAL = 0, 1, 2


@pytest.fixture(scope="module")
def plan(host_library):
    # sm_80: the device code that decode_plan.cuh's headers hold needs it (the library's oldest)
    lib = host_library("plan_host", ["cuda/src/decode_plan.cu", "cuda/src/context.cu",
                                     "tests/cuda/plan_host.cu"], nvcc_flags=("-arch=sm_80",))

    def plan(epilogue, parts, cols, blocks, slot_kb, heads=0, kv_heads=0, head_dim=0, rope_dims=0,
             neox=True, offset=0):
        types = (ctypes.c_int * len(parts))(*(t for t, _ in parts))
        rows = (ctypes.c_longlong * len(parts))(*(r for _, r in parts))
        err = ctypes.create_string_buffer(512)
        n = lib.plan_host(epilogue, len(parts), types, rows, cols, heads, kv_heads, head_dim,
                          rope_dims, int(neox), blocks, ctypes.c_uint(slot_kb << 10), offset, err,
                          len(err))
        assert n >= 0, err.value.decode()
        return n
    return plan


QWEN_QKV = dict(heads=14, kv_heads=2, head_dim=64, rope_dims=64)


@pytest.mark.parametrize("blocks, slot_kb", [(132, 64), (132, 16), (7, 16), (1, 16), (264, 64)])
def test_qwen2_q_k_v_with_v_of_another_format(plan, blocks, slot_kb):
    n = plan(QKV, [(Q5_0, 896), (Q5_0, 128), (Q8_0, 128)], 896, blocks, slot_kb, **QWEN_QKV)
    assert n >= min(blocks, 576)  # every block has pairs: 576 of them (14 + 2 + 2 heads of 32)


@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize("rope_dims", [64, 32])
@pytest.mark.parametrize("offset", [0, 3])
def test_q_k_v_rope_layouts_and_partial_rotation(plan, neox, rope_dims, offset):
    """NEOX pairs (i, i + dims/2) or NORM (2i, 2i + 1), a rotation of part of the head (its other
    features paired (2i, 2i + 1)), parts that start off a 256-byte boundary: a chunk never mixes
    the runs, so its rows stay two runs."""
    for blocks in (132, 13, 1):
        plan(QKV, [(Q4_K, 2048), (Q4_K, 512), (Q6_K, 512)], 2048, blocks, 16, heads=32, kv_heads=8,
             head_dim=64, rope_dims=rope_dims, neox=neox, offset=offset)


def test_phi3_joint_q_k_v_and_joint_gate_up(plan):
    plan(QKV, [(Q4_K, 9216)], 3072, 132, 64, heads=32, kv_heads=32, head_dim=96, rope_dims=96)
    plan(SWIGLU, [(Q4_K, 16384)], 3072, 132, 64)


@pytest.mark.parametrize("fmt", [Q4_K, Q4_0, Q4_1, Q5_0, Q8_0])
@pytest.mark.parametrize("blocks", [132, 5])
def test_gate_and_up_as_two_parts(plan, fmt, blocks):
    plan(SWIGLU, [(fmt, 4864), (fmt, 4864)], 896, blocks, 64)


@pytest.mark.parametrize("fmt, rows, cols", [(Q5_0, 896, 896), (Q6_K, 896, 4864), (Q4_K, 3072, 8192),
                                             (Q8_0, 151936, 896), (Q8_0, 49, 64), (Q4_1, 49152, 576)])
@pytest.mark.parametrize("blocks, slot_kb", [(132, 64), (132, 16), (3, 16)])
def test_residual_and_logits_rows(plan, fmt, rows, cols, blocks, slot_kb):
    """One run of consecutive rows a chunk (an odd last row paired with itself)."""
    plan(RESIDUAL, [(fmt, rows)], cols, blocks, slot_kb)


def test_a_slot_holds_as_many_pairs_as_fit(plan):
    """The logits of the Qwen2.5 vocabulary over 132 blocks in 64 KB slots: 575 or 576 pairs a
    block, 34 pairs of 952-byte rows a slot, so 17 chunks a block."""
    assert plan(RESIDUAL, [(Q8_0, 151936)], 896, 132, 64) == 132 * 17
