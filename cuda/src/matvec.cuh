// The integer decode matvec's device pieces (matvec.cu), shared with the kernels that dot
// weight rows with one quantized vector (moe.cu): x quantized to Q8_1, and a warp's dots of R
// rows with it, 32-value units at a time (dp4a, F::Unit).
#pragma once
#include <cstdint>
#include "quant.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kInFlight = 4;  // 32-value units of weights a lane loads at once (integer path)

// x as Q8_1: the int8 values (16-byte aligned), and a scale per 32. matvec keeps it in shared
// memory, the scales right after the values (q8_1_bytes); moe in device memory.
struct XQ8_1 {
    int8_t *q;
    block_q8_1_scale *s;
};

__host__ __device__ constexpr size_t q8_1_scales_offset(int cols) {
    return (size_t(cols) + 15) / 16 * 16;
}

__host__ __device__ constexpr size_t q8_1_bytes(int cols) {
    return q8_1_scales_offset(cols) + size_t(cols) / 32 * sizeof(block_q8_1_scale);
}

// Each block quantizes x for itself, a thread per 32 values: x (about 39,300 floats at most) stays in
// L1 for the next blocks of the SM, and a few hundred instructions per thread are small beside
// the block's 4 R rows of weights.
__device__ inline void quantize_q8_1(const float *__restrict__ x, XQ8_1 out, int cols) {
    for (int u = threadIdx.x; u < cols / 32; u += blockDim.x) {
        float v[32];
        const float4 *p = reinterpret_cast<const float4 *>(x) + 8 * u;
        for (int i = 0; i < 8; ++i) {
            float4 f = __ldg(p + i);
            v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
        }
        XBlock b = quantize_block_q8_1(v);
        uint4 *dst = reinterpret_cast<uint4 *>(out.q) + 2 * u;
        dst[0] = make_uint4(b.q[0], b.q[1], b.q[2], b.q[3]);
        dst[1] = make_uint4(b.q[4], b.q[5], b.q[6], b.q[7]);
        out.s[u] = b.s;
    }
}

// Lane i of a warp holds value i of 32-value unit u: the unit as Q8_1, as
// quantize_block_q8_1 makes it.
__device__ __forceinline__ void quantize_unit(float v, XQ8_1 out, int u) {
    int lane = threadIdx.x % 32;
    float d = q8_1_scale(warp_reduce_max(fabsf(v)));
    int q = q8_1_value(v, q8_1_inverse(d));
    out.q[32 * u + lane] = int8_t(q);
    int sum = __reduce_add_sync(0xFFFFFFFFu, q);
    if (lane == 0) out.s[u] = {d, sum};
}

// Unit u of Q8_1 values q with scales s.
__device__ __forceinline__ XBlock load_x(const int8_t *q, const block_q8_1_scale *s, int u) {
    XBlock b;
    const uint4 *q16 = reinterpret_cast<const uint4 *>(q) + 2 * u;
    for (int h = 0; h < 2; ++h) {
        uint4 v = q16[h];
        b.q[4 * h] = v.x, b.q[4 * h + 1] = v.y, b.q[4 * h + 2] = v.z, b.q[4 * h + 3] = v.w;
    }
    b.s = s[u];
    return b;
}

__device__ __forceinline__ XBlock load_x(XQ8_1 x, int u) { return load_x(x.q, x.s, u); }

// The same from global memory through L2 (__ldcg): values another SM wrote earlier in the same
// kernel (L1 is not coherent).
__device__ __forceinline__ XBlock load_x_cg(const int8_t *q, const block_q8_1_scale *s, int u) {
    XBlock b;
    const uint4 *q16 = reinterpret_cast<const uint4 *>(q) + 2 * u;
    for (int h = 0; h < 2; ++h) {
        uint4 v = __ldcg(q16 + h);
        b.q[4 * h] = v.x, b.q[4 * h + 1] = v.y, b.q[4 * h + 2] = v.z, b.q[4 * h + 3] = v.w;
    }
    const float2 *s8 = reinterpret_cast<const float2 *>(s + u);
    float2 ds = __ldcg(s8);
    b.s = {ds.x, __float_as_int(ds.y)};
    return b;
}

// The dots of the R rows at wr with x by one warp, summed over the warp (every lane gets
// them). Lane l takes units l, l + 32, ... of each, kInFlight / R units of each row per step:
// it issues every load of a step (unit indices clamped, the surplus masked) before it decodes
// the first, so each lane keeps kInFlight units in flight. The step loops are unrolled:
// rolled, they left wu in local memory (Q6_K and MXFP4 at R = 2).
template <class F, int R>
__device__ __forceinline__ void dot_rows(const uint8_t *const (&wr)[R], XQ8_1 x, int cols,
                                         float (&sum)[R]) {
    constexpr int steps = kInFlight / R;
    int lane = threadIdx.x % 32, units = cols / 32;
    float acc[R] = {};
    for (int u0 = lane; u0 < units; u0 += 32 * steps) {
        typename F::Unit wu[steps][R];
        XBlock xb[steps];
#pragma unroll
        for (int j = 0; j < steps; ++j) {
            int u = min(u0 + 32 * j, units - 1);
            for (int r = 0; r < R; ++r) wu[j][r].load(wr[r], u);
            xb[j] = load_x(x, u);
        }
#pragma unroll
        for (int j = 0; j < steps; ++j)
            for (int r = 0; r < R; ++r) {
                float d = wu[j][r].dot(xb[j]);
                acc[r] += u0 + 32 * j < units ? d : 0.0f;
            }
    }
    for (int r = 0; r < R; ++r) sum[r] = warp_reduce_sum(acc[r]);
}

// y[row0..row0+R-1] of W x by one warp (rows past the matrix are computed on its last row and
// not written).
template <class F, int R>
__device__ __forceinline__ void matvec_rows(const uint8_t *__restrict__ w, XQ8_1 x,
                                            float *__restrict__ y, int row0, int rows, int cols) {
    const uint8_t *wr[R];
    for (int r = 0; r < R; ++r) wr[r] = w + row_bytes<F>(cols) * min(row0 + r, rows - 1);
    float sum[R];
    dot_rows<F, R>(wr, x, cols, sum);
    for (int r = 0; r < R; ++r)
        if (threadIdx.x % 32 == 0 && row0 + r < rows) y[row0 + r] = sum[r];
}

}  // namespace orcd
