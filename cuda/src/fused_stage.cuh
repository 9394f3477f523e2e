// The fused decode matvec's device pieces (fused.cu), shared with the persistent decode kernel
// (decode_persistent.cu). A block of W warps stages x once, then each group of op.split warps
// takes pairs of rows (split-K: the group's warps share out a pair's units): the two rows share
// every x load, and a pair is what the epilogues need together (rope's two features, gate and
// up of one hidden unit).
// The inner products are matvec.cu's two paths, chosen as it chooses them (op.path,
// ORCD_MATVEC): the integer one (x as Q8_1, each lane dotting 32-value units with F::Unit) for
// quantized weights, the plain one (x as F32, runs of 16 decoded by F::run16) otherwise. Sums
// are reduced in a fixed order (atomic counters only pick the warp that finishes a step): the
// same bits from run to run. Activations (x, the previous step's Q8_1 hidden, the residual) are
// read through L2 (__ldcg): inside one persistent kernel other SMs wrote them, and L1 is not
// coherent.
#pragma once
#include <type_traits>
#include "fused.cuh"
#include "matvec.cuh"
#include "overlap.cuh"
#include "quant.cuh"
#include "reduce.cuh"

namespace orcd {


constexpr int kFusedSteps = 2;  // units of each row a lane loads before it dots the first
constexpr int kStageBatch = 4;  // quads of x a thread loads before it stages the first

// x in shared memory: F32 values (plain path), or Q8_1 (integer path): cols int8, then a
// scale per 32; or the Q8_1 x in global memory that the previous kernel left.
struct StagedX {
    float *f;
    const int8_t *q;
    const block_q8_1_scale *s;
    bool global;  // q and s are the previous step's, in global memory: read through L2
};

__host__ __device__ __forceinline__ int total_rows(const FusedMatvec &op) {
    int rows = 0;
    for (int i = 0; i < op.parts; ++i) rows += int(op.w[i].ne1);
    return rows;
}

__device__ __forceinline__ float4 x_quad(const FusedMatvec &op, int i) {
    return __ldcg(reinterpret_cast<const float4 *>(op.x) + i);
}

__device__ __forceinline__ float4 norm_quad(const FusedMatvec &op, int i) {
    return __ldg(reinterpret_cast<const float4 *>(op.norm) + i);
}

// v rmsnorm'd with the norm's weights w, as rmsnorm_kernel does.
__device__ __forceinline__ float4 normed(float4 v, float4 w, float inv_rms) {
    return {v.x * inv_rms * w.x, v.y * inv_rms * w.y, v.z * inv_rms * w.z, v.w * inv_rms * w.w};
}

__device__ __forceinline__ float squares(float4 v) {
    return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
}

// 1 / rms of x from each thread's sum of squares.
__device__ __forceinline__ float inv_rms_from(const FusedMatvec &op, float ss) {
    return 1.0f / sqrtf(block_sum(ss) / op.cols + op.eps);
}

// Four values of x̂ from quad i (values 4i..4i+3): x, or rmsnorm'd.
__device__ __forceinline__ float4 staged_quad(const FusedMatvec &op, int i, float inv_rms) {
    float4 v = x_quad(op, i);
    return op.norm ? normed(v, norm_quad(op, i), inv_rms) : v;
}

__device__ inline float inv_rms_of(const FusedMatvec &op) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < op.cols / 4; i += blockDim.x) ss += squares(x_quad(op, i));
    return inv_rms_from(op, ss);
}

// Quad i of x into Q8_1, rounded as quantize_block_q8_1 rounds it: the 8 lanes of a
// 32-value block (i / 8), a lane-aligned group that enters and leaves together, meet over
// shuffles.
__device__ __forceinline__ void quantize_quad(float4 v, int i, int8_t *q, block_q8_1_scale *s) {
    unsigned group = 0xFFu << (threadIdx.x % 32 & ~7u);
    float m = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    for (int o = 4; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(group, m, o));
    float d = q8_1_scale(m), inv = q8_1_inverse(d);
    int q0 = q8_1_value(v.x, inv), q1 = q8_1_value(v.y, inv), q2 = q8_1_value(v.z, inv),
        q3 = q8_1_value(v.w, inv);
    reinterpret_cast<uint32_t *>(q)[i] = uint32_t(q0 & 0xFF) | uint32_t(q1 & 0xFF) << 8 |
                                         uint32_t(q2 & 0xFF) << 16 | uint32_t(q3 & 0xFF) << 24;
    int sum = __reduce_add_sync(group, q0 + q1 + q2 + q3);
    if (threadIdx.x % 8 == 0) s[i / 8] = {d, sum};
}

// Quad i of x̂ into shared memory: Q8_1 (integer path) or floats.
template <bool Int>
__device__ __forceinline__ void stage_quad(float4 v, int i, uint8_t *smem, int cols) {
    if constexpr (Int)
        quantize_quad(v, i, reinterpret_cast<int8_t *>(smem),
                      reinterpret_cast<block_q8_1_scale *>(smem + cols));
    else reinterpret_cast<float4 *>(smem)[i] = v;
}

// The same when one batch of kStageBatch quads per thread holds the whole row and a norm is
// given: x and the norm's weights are loaded once, the sum of squares taken from the registers
// (in inv_rms_of's order: the same bits), one round trip to L2 instead of two.
template <bool Int>
__device__ inline void stage_normed_once(const FusedMatvec &op, uint8_t *smem) {
    int quads = op.cols / 4;
    float4 v[kStageBatch], w[kStageBatch];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kStageBatch; ++j) {
        int i = threadIdx.x + j * blockDim.x;
        bool in = i < quads;
        v[j] = in ? x_quad(op, i) : make_float4(0, 0, 0, 0);
        w[j] = in ? norm_quad(op, i) : make_float4(0, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < kStageBatch; ++j)
        if (threadIdx.x + j * blockDim.x < quads) ss += squares(v[j]);
    float inv_rms = inv_rms_from(op, ss);
#pragma unroll
    for (int j = 0; j < kStageBatch; ++j) {
        int i = threadIdx.x + j * blockDim.x;  // a Q8_1 group is all in or all out
        if (i < quads) stage_quad<Int>(normed(v[j], w[j], inv_rms), i, smem, op.cols);
    }
}

// x̂ into shared memory, as floats or (integer path) Q8_1; kStageBatch quads per thread are
// loaded before the first is used. A Q8_1 x the previous kernel left (op.xq) is taken as is.
template <bool Int>
__device__ inline StagedX stage_x(const FusedMatvec &op, uint8_t *smem) {
    if (Int && op.xq.q) return {nullptr, op.xq.q, op.xq.s, true};
    int cols = op.cols, quads = cols / 4;
    int8_t *q = reinterpret_cast<int8_t *>(smem);
    block_q8_1_scale *scales = reinterpret_cast<block_q8_1_scale *>(smem + cols);
    float *f = reinterpret_cast<float *>(smem);
    if (op.norm && quads <= kStageBatch * int(blockDim.x)) {
        stage_normed_once<Int>(op, smem);
        __syncthreads();
        return {f, q, scales, false};
    }
    float inv_rms = op.norm ? inv_rms_of(op) : 1.0f;
    for (int i0 = threadIdx.x; i0 < quads; i0 += kStageBatch * blockDim.x) {
        float4 v[kStageBatch];
#pragma unroll
        for (int j = 0; j < kStageBatch; ++j) {
            int i = i0 + j * blockDim.x;
            v[j] = i < quads ? staged_quad(op, i, inv_rms) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int j = 0; j < kStageBatch; ++j) {
            int i = i0 + j * blockDim.x;
            if (i >= quads) break;
            stage_quad<Int>(v[j], i, smem, cols);
        }
    }
    __syncthreads();
    return {f, q, scales, false};
}

// A pair's units of one pass of its group (split-K: warp m of the group takes units
// m * 32 + lane, + 32 * group, ...; a pass is Steps such units of each row), loaded before the
// first is dotted, from global memory or (Mem = FromShared) rows staged in shared memory. A
// step past the row is computed on its last unit and dropped: skipping it with a break in the
// unrolled loops cost decode speed on the H200 (Qwen shape 922 -> 762 t/s, Phi-3 364 -> 164),
// the units no longer staying in registers.
template <class F, int Steps, class Mem = FromGlobal>
struct PairUnits {
    typename F::template UnitIn<Mem> a[Steps], b[Steps];

    __device__ __forceinline__ void load(const uint8_t *w0, const uint8_t *w1, int u0, int units,
                                         int stride) {
#pragma unroll
        for (int j = 0; j < Steps; ++j) {
            int u = min(u0 + stride * j, units - 1);
            a[j].load(w0, u);
            b[j].load(w1, u);
        }
    }

    __device__ __forceinline__ void dot(const StagedX &x, int u0, int units, int stride,
                                        float &acc0, float &acc1) const {
#pragma unroll
        for (int j = 0; j < Steps; ++j) {
            bool in = u0 + stride * j < units;
            int u = min(u0 + stride * j, units - 1);
            XBlock xb = x.global ? load_x_cg(x.q, x.s, u) : load_x(x.q, x.s, u);
            float d0 = a[j].dot(xb), d1 = b[j].dot(xb);
            acc0 += in ? d0 : 0.0f;
            acc1 += in ? d1 : 0.0f;
        }
    }
};

// Both rows' dots over the units of `member` of `group` warps that share the pair, pass by
// pass (Steps units of each row: kFusedSteps, or 1 where one pass of the group covers the row,
// fused.cu's steps_for), summed over the warp (every lane gets them).
template <class F, int Steps = kFusedSteps, class Mem = FromGlobal>
__device__ inline float2 pair_dot_q8_1(const uint8_t *w0, const uint8_t *w1, const StagedX &x,
                                       int cols, int member, int group) {
    int units = cols / 32, stride = 32 * group;
    float acc0 = 0.0f, acc1 = 0.0f;
    for (int u0 = 32 * member + threadIdx.x % 32; u0 < units; u0 += stride * Steps) {
        PairUnits<F, Steps, Mem> w;
        w.load(w0, w1, u0, units, stride);
        w.dot(x, u0, units, stride, acc0, acc1);
    }
    return {warp_reduce_sum(acc0), warp_reduce_sum(acc1)};
}

// d * sum(q x) (+ m * sum(x)) over a run of 16, as matvec.cu's run_dot.
__device__ __forceinline__ float scaled_run(fmt::RunScale s, const float (&q)[kRun],
                                            const float *x, bool affine) {
    float qx = 0.0f, sx = 0.0f;
    for (int i = 0; i < kRun; ++i) {
        qx = fmaf(q[i], x[i], qx);
        sx += x[i];
    }
    return affine ? fmaf(s.m, sx, s.d * qx) : s.d * qx;
}

template <class F>
__device__ inline float2 pair_dot_f32(const uint8_t *w0, const uint8_t *w1, const StagedX &x,
                                      int cols, int member, int group) {
    float acc0 = 0.0f, acc1 = 0.0f;
    for (int i = (32 * member + threadIdx.x % 32) * kRun; i < cols; i += 32 * group * kRun) {
        float q0[kRun], q1[kRun];
        fmt::RunScale s0 = F::run16(w0, i, q0), s1 = F::run16(w1, i, q1);
        acc0 += scaled_run(s0, q0, x.f + i, F::affine);
        acc1 += scaled_run(s1, q1, x.f + i, F::affine);
    }
    return {warp_reduce_sum(acc0), warp_reduce_sum(acc1)};
}

// A pair's two logical rows (rows of w[0], then w[1], w[2]) and what its epilogue needs.
struct Pair {
    int row0, row1;
    int part, head, a, b;  // qkv: Q/K/V, the head, its two features; else out[a], out[b]
    int i;                 // qkv: the rope pair index
    bool rotate;
};

// qkv: pair i of a head is rope's pair, (i, i + dims/2) for NEOX and (2i, 2i + 1) for NORM
// while i < dims/2; past the rotated dims, and in V, features (2i, 2i + 1).
__host__ __device__ inline Pair qkv_pair(const FusedMatvec &op, int p) {
    const AttentionShape &s = op.kv.shape;
    int half_dim = s.head_dim / 2, q_pairs = s.heads * half_dim, kv_pairs = s.kv_heads * half_dim;
    Pair r;
    r.part = p < q_pairs ? 0 : p < q_pairs + kv_pairs ? 1 : 2;
    int pp = p - (r.part == 0 ? 0 : r.part == 1 ? q_pairs : q_pairs + kv_pairs);
    r.head = pp / half_dim;
    r.i = pp % half_dim;
    r.rotate = r.part < 2 && 2 * r.i < op.kv.rope.dims;
    bool neox = r.rotate && op.kv.rope.neox;
    r.a = neox ? r.i : 2 * r.i;
    r.b = neox ? r.i + op.kv.rope.dims / 2 : 2 * r.i + 1;
    int base = (r.part == 0 ? 0 : s.heads + (r.part == 2 ? s.kv_heads : 0)) * s.head_dim;
    r.row0 = base + r.head * s.head_dim + r.a;
    r.row1 = base + r.head * s.head_dim + r.b;
    return r;
}

__host__ __device__ inline Pair pair_of(const FusedMatvec &op, int p, int rows) {
    if (op.epilogue == Epilogue::qkv) return qkv_pair(op, p);
    Pair r{};
    if (op.epilogue == Epilogue::swiglu) {
        r.row0 = r.a = p;
        r.row1 = rows / 2 + p;
        return r;
    }
    r.row0 = r.a = 2 * p;
    r.b = 2 * p + 1;
    r.row1 = r.b < rows ? r.b : rows - 1;  // an odd last row is computed twice, written once
    return r;
}

// Part and row within it of a logical row.
__host__ __device__ __forceinline__ int part_of(const FusedMatvec &op, int &row) {
    int i = 0;
    while (i + 1 < op.parts && row >= op.w[i].ne1) row -= int(op.w[i].ne1), ++i;
    return i;
}

__device__ inline void store_qkv(const FusedMatvec &op, const Pair &p, float y0, float y1) {
    const KvTarget &kv = op.kv;
    int hd = kv.shape.head_dim, f0 = p.head * hd + p.a, f1 = p.head * hd + p.b;
    if (kv.bias[p.part]) y0 += kv.bias[p.part][f0], y1 += kv.bias[p.part][f1];
    if (p.rotate) {  // as rope_kernel: angles in double, cos and sin scaled
        double theta = double(*kv.pos) * kv.rope.inv_freq[p.i];
        float c = float(cos(theta) * kv.rope.scale), s = float(sin(theta) * kv.rope.scale);
        float r0 = y0 * c - y1 * s, r1 = y0 * s + y1 * c;
        y0 = r0, y1 = r1;
    }
    if (p.part == 0) {
        op.out[f0] = y0, op.out[f1] = y1;
        return;
    }
    half *cache = (p.part == 1 ? kv.k : kv.v) + (size_t(p.head) * kv.shape.ctx + *kv.pos) * hd;
    cache[p.a] = __float2half_rn(y0);
    cache[p.b] = __float2half_rn(y1);
}

// The warp that writes the last of 32 consecutive outputs (counted in groups_done, 0 before
// and after) quantizes them into out_q, as quantize_block_q8_1 would: which warp is last
// does not change a bit.
__device__ inline void quantize_group_if_last(const FusedMatvec &op, int unit) {
    int lane = threadIdx.x % 32, group = unit / 32, last = 0;
    if (lane == 0) {
        __threadfence();  // out[unit] is visible before the count says so
        last = atomicAdd(op.groups_done + group, 1) == 31;
    }
    if (!__shfl_sync(0xFFFFFFFFu, last, 0)) return;
    __threadfence();
    quantize_unit(__ldcg(op.out + 32 * group + lane), op.out_q, group);  // through L2: other blocks
    if (lane == 0) op.groups_done[group] = 0;
}

__device__ __forceinline__ float with_bias(const FusedMatvec &op, int row, float y) {
    return op.bias ? y + op.bias[row] : y;
}

__device__ inline void epilogue(const FusedMatvec &op, const Pair &p, int rows, float y0, float y1) {
    switch (op.epilogue) {
        case Epilogue::qkv:
            store_qkv(op, p, y0, y1);
            return;
        case Epilogue::swiglu:
            op.out[p.a] = y0 / (1.0f + expf(-y0)) * y1;
            return;
        case Epilogue::residual:
            op.out[p.a] = __ldcg(op.out + p.a) + with_bias(op, p.a, y0);
            if (p.b < rows) op.out[p.b] = __ldcg(op.out + p.b) + with_bias(op, p.b, y1);
            return;
        case Epilogue::store:
            op.out[p.a] = with_bias(op, p.a, y0);
            if (p.b < rows) op.out[p.b] = with_bias(op, p.b, y1);
            return;
    }
}

// Where a block's warps stand in the op: rows and pairs of it, the warps that share a pair
// (group), the groups of the block, and this warp's place.
struct Geometry {
    int rows, pairs, group, groups, warp, member, lane;
};

__device__ inline Geometry geometry_of(const FusedMatvec &op) {
    Geometry g;
    g.rows = total_rows(op);
    g.pairs = (g.rows + 1) / 2;
    g.group = max(op.split, 1);
    g.groups = int(blockDim.x) / 32 / g.group;
    g.warp = threadIdx.x / 32;
    g.member = g.warp % g.group;
    g.lane = threadIdx.x % 32;
    return g;
}

// A pair's sums, once its warps have dotted it: the group's warps meet in shared memory, where
// its first warp adds their sums in warp order (the same bits from run to run) and runs the
// epilogue. Every warp of the block calls it (the barriers).
__device__ __forceinline__ void finish_pair(const FusedMatvec &op, const Geometry &g, float2 *partial,
                                   bool mine, const Pair &pair, float2 y) {
    if (g.group > 1) {
        if (g.lane == 0) partial[g.warp] = y;
        __syncthreads();
        if (g.member == 0)
            for (int m = 1; m < g.group; ++m)
                y.x += partial[g.warp + m].x, y.y += partial[g.warp + m].y;
        __syncthreads();  // partial is rewritten by the next pair
    }
    if (!mine || g.member != 0) return;
    if (g.lane == 0) epilogue(op, pair, g.rows, y.x, y.y);
    if (op.epilogue == Epilogue::swiglu && op.out_q.q) quantize_group_if_last(op, pair.a);
}

// The start of a pair's two rows in its parts' weights, all of format F.
template <class F>
__device__ __forceinline__ void pair_rows(const FusedMatvec &op, const Pair &pair,
                                          const uint8_t *&w0, const uint8_t *&w1) {
    int r0 = pair.row0, r1 = pair.row1;
    int part0 = part_of(op, r0), part1 = part_of(op, r1);
    w0 = static_cast<const uint8_t *>(op.w[part0].data) + row_bytes<F>(op.cols) * r0;
    w1 = static_cast<const uint8_t *>(op.w[part1].data) + row_bytes<F>(op.cols) * r1;
}

// The formats a kernel is made for (Only): every one, each part dispatched on its own type
// (AnyFormat, on_format); the one format of every part; or FormatPair<A, B>, the two that the
// parts mix (a K-quant mix's q, k beside its v: Q5_0 and Q8_0 in 13 layers of the real Qwen2.5
// Q4_K_M file), taken pair by pair. The host chose the kernel by them (fused.cu). A kernel of
// one format is a small binary: the every-format one is 25,672 instructions on sm_90, and its
// warps stalled on instruction fetch a third of the time (ncu, Qwen2.5-0.5B shape's qkv).
struct AnyFormat {};
template <class A, class B>
struct FormatPair {};

template <class Only>
struct Formats {  // one format
    static constexpr bool one = true;
    template <bool Int, class R, class Fn>
    __device__ static R on(int, Fn &&fn) { return fn(Only{}); }
};
template <>
struct Formats<AnyFormat> {
    static constexpr bool one = false;
    template <bool Int, class R, class Fn>
    __device__ static R on(int ggml_type, Fn &&fn) { return on_format<Int, R>(ggml_type, fn); }
};
template <class A, class B>
struct Formats<FormatPair<A, B>> {
    static constexpr bool one = false;
    template <bool Int, class R, class Fn>
    __device__ static R on(int ggml_type, Fn &&fn) {
        return ggml_type == A::type ? fn(A{}) : fn(B{});
    }
};

template <class Only, bool Int, class R, class Fn>
__device__ __forceinline__ R on_format_of(int ggml_type, Fn &&fn) {
    return Formats<Only>::template on<Int, R>(ggml_type, fn);
}

// Formats whose pair of units (one step) is small enough that a warp holds a second pair's
// while it dots the first, or holds the first while it stages x, without spilling.
template <class F>
constexpr bool kStreamable = sizeof(typename F::Unit) <= 64;

// Whether a kernel of format Only streams its pairs whenever it runs (the host chose it for a
// streamed op: fused.cu), holding no code for the other way.
template <class Only>
__host__ __device__ constexpr bool always_streamed() {
    if constexpr (!Formats<Only>::one) return false;
    else return Only::integer_dot && kStreamable<Only>;
}

// The integer path where every part is of format F (kStreamable) and one step of a group covers
// a row: the units of the warp's first pair are loaded before the kernel waits for its
// predecessor (weights are never written: overlap.cuh) and before x is staged, and those of
// each next pair before the current one is dotted, so that a warp's loads of its pairs overlap
// instead of taking a round trip each.
template <class F>
__device__ __forceinline__ void streamed_pairs(const FusedMatvec &op, uint8_t *smem,
                                               const Geometry &g, float2 *partial, int block,
                                               int blocks) {
    constexpr int Steps = 1;
    int units = op.cols / 32, stride = 32 * g.group, u0 = 32 * g.member + g.lane;
    int step = blocks * g.groups, p = block * g.groups + g.warp / g.group;
    PairUnits<F, Steps> now, next;
    Pair pair{}, following{};
    const uint8_t *w0, *w1;
    if (p < g.pairs) {
        pair = pair_of(op, p, g.rows);
        pair_rows<F>(op, pair, w0, w1);
        now.load(w0, w1, u0, units, stride);
    }
    wait_for_previous_kernel();
    StagedX x = stage_x<true>(op, smem);
    for (int p0 = block * g.groups; p0 < g.pairs; p0 += step, p += step) {  // the same in the block
        bool mine = p < g.pairs;
        if (p + step < g.pairs) {
            following = pair_of(op, p + step, g.rows);
            pair_rows<F>(op, following, w0, w1);
            next.load(w0, w1, u0, units, stride);
        }
        float2 y{0.0f, 0.0f};
        if (mine) {
            float acc0 = 0.0f, acc1 = 0.0f;
            now.dot(x, u0, units, stride, acc0, acc1);
            y = {warp_reduce_sum(acc0), warp_reduce_sum(acc1)};
        }
        finish_pair(op, g, partial, mine, pair, y);
        now = next, pair = following;
    }
}

// Pair by pair, each format as its pair's part has it (or the plain path): x staged once, then
// group g takes the pairs block * groups + g, + blocks * groups, ...
template <bool Int, int Steps, class Only>
__device__ __forceinline__ void pairs_one_by_one(const FusedMatvec &op, uint8_t *smem, const Geometry &g,
                                        float2 *partial, int block, int blocks) {
    wait_for_previous_kernel();
    StagedX x = stage_x<Int>(op, smem);
    for (int p0 = block * g.groups; p0 < g.pairs; p0 += blocks * g.groups) {  // the same in the block
        int p = p0 + g.warp / g.group;
        bool mine = p < g.pairs;
        Pair pair{};
        float2 y{0.0f, 0.0f};
        if (mine) {
            pair = pair_of(op, p, g.rows);
            int r0 = pair.row0;
            int part0 = part_of(op, r0);
            y = on_format_of<Only, Int, float2>(op.w[part0].type, [&](auto f) {
                using F = decltype(f);
                const uint8_t *w0, *w1;
                pair_rows<F>(op, pair, w0, w1);
                if constexpr (Int)
                    return pair_dot_q8_1<F, Steps>(w0, w1, x, op.cols, g.member, g.group);
                else return pair_dot_f32<F>(w0, w1, x, op.cols, g.member, g.group);
            });
        }
        finish_pair(op, g, partial, mine, pair, y);
    }
}

__device__ __forceinline__ bool one_format(const FusedMatvec &op) {
    for (int i = 1; i < op.parts; ++i)
        if (op.w[i].type != op.w[0].type) return false;
    return true;
}

// Block `block` of `blocks` (warps of 32 threads each, in groups of op.split warps that share a
// pair): a block with no pair returns at once; the others wait for the kernel before them
// (overlap.cuh: a no-op unless launched to overlap it), stage x once and take their pairs,
// streamed where the op allows it. Only: AnyFormat, the format of every part, or the
// FormatPair they mix (whose ops are never streamed: their parts differ).
template <bool Int, int Steps = kFusedSteps, class Only = AnyFormat>
__device__ __forceinline__ void fused_matvec_block(const FusedMatvec &op, uint8_t *smem,
                                                   int block, int blocks) {
    __shared__ float2 partial[32];  // a block's warps
    Geometry g = geometry_of(op);
    if (block * g.groups >= g.pairs) return;
    if constexpr (Int && Steps == 1 && always_streamed<Only>()) {
        streamed_pairs<Only>(op, smem, g, partial, block, blocks);
    } else {
        if constexpr (Int && Steps == 1 && std::is_same_v<Only, AnyFormat>) {
            if (op.streamed && one_format(op) && op.cols / 32 <= 32 * g.group) {
                bool streamed = on_format_of<Only, true, bool>(op.w[0].type, [&](auto f) {
                    using F = decltype(f);
                    if constexpr (kStreamable<F>) {
                        streamed_pairs<F>(op, smem, g, partial, block, blocks);
                        return true;
                    } else return false;
                });
                if (streamed) return;
            }
        }
        pairs_one_by_one<Int, Steps, Only>(op, smem, g, partial, block, blocks);
    }
}

}  // namespace orcd
