// Decode: y = W x for one token, on two paths behind one switch (ORCD_MATVEC):
//  - the integer path (default) for quantized weights: x is quantized once per call to Q8_1
//    blocks of 32 in scratch, then each lane takes one 32-value unit of a row at a time and
//    dots it in integers (dp4a, F::dot_q8_1), one multiply by the scales per unit. A warp owns
//    R rows and reads each x unit once for all of them.
//  - the plain path (ORCD_MATVEC=f32, and always for F32/F16/BF16 weights): one warp per row
//    walks the row in runs of 16 values, decodes each run to floats in registers and dots it
//    with the F32 x (read through L1, shared by every row of the SM).
// Both reduce each row across its warp with shuffles in a fixed order: no atomics, the same
// bits from run to run.
#include <cstdlib>
#include <cstring>
#include "ops.cuh"
#include "quant.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kMatvecWarps = 4;
constexpr int kQuantizeThreads = 256;

// d * sum(q x) (+ m * sum(x)): one multiply by the run's scale instead of one per value.
template <class F>
__device__ __forceinline__ float run_dot(const uint8_t *row, int i0, const float *x) {
    float q[kRun];
    fmt::RunScale s = F::run16(row, i0, q);
    const float4 *p = reinterpret_cast<const float4 *>(x + i0);
    float qx = 0.0f, sx = 0.0f;
    for (int i = 0; i < kRun / 4; ++i) {
        float4 v = __ldg(p + i);
        qx = fmaf(q[4 * i], v.x, qx);
        qx = fmaf(q[4 * i + 1], v.y, qx);
        qx = fmaf(q[4 * i + 2], v.z, qx);
        qx = fmaf(q[4 * i + 3], v.w, qx);
        if constexpr (F::affine) sx += (v.x + v.y) + (v.z + v.w);
    }
    return F::affine ? fmaf(s.m, sx, s.d * qx) : s.d * qx;
}

template <class F>
__global__ void __launch_bounds__(kMatvecWarps * 32)
matvec_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
              int rows, int cols) {
    int row = blockIdx.x * kMatvecWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const uint8_t *wr = w + row_bytes<F>(cols) * row;
    float acc = 0.0f;
#pragma unroll 4
    for (int i = lane * kRun; i < cols; i += 32 * kRun) acc += run_dot<F>(wr, i, x);
    acc = warp_reduce_sum(acc);
    if (lane == 0) y[row] = acc;
}

// x as Q8_1 in scratch: the int8 values, then (16-byte aligned) a scale per 32.
struct XQ8_1 {
    int8_t *q;
    block_q8_1_scale *s;
};

__host__ __device__ inline size_t q8_1_scales_offset(int cols) { return (size_t(cols) + 15) / 16 * 16; }

// One warp per 32 values: d = max|x| / 127, q = rint(x / d), both correctly rounded (as
// orcd.quant.activations computes them); d = 0 (all zero) gives q = 0.
__global__ void __launch_bounds__(kQuantizeThreads)
quantize_q8_1_kernel(const float *__restrict__ x, XQ8_1 out, int cols) {
    int i = blockIdx.x * kQuantizeThreads + threadIdx.x;
    if (i >= cols) return;  // whole warps: cols is a multiple of 32
    float v = __ldg(x + i);
    float d = __fdiv_rn(warp_reduce_max(fabsf(v)), 127.0f);
    int q = d > 0.0f ? max(-127, min(127, __float2int_rn(__fdiv_rn(v, d)))) : 0;
    out.q[i] = int8_t(q);
    int sum = __reduce_add_sync(0xFFFFFFFFu, q);
    if (i % 32 == 0) out.s[i / 32] = {d, sum};
}

template <class F, int R>
__global__ void __launch_bounds__(kMatvecWarps * 32)
matvec_q8_1_kernel(const uint8_t *__restrict__ w, XQ8_1 x, float *__restrict__ y, int rows,
                   int cols) {
    int row0 = (blockIdx.x * kMatvecWarps + threadIdx.x / 32) * R, lane = threadIdx.x % 32;
    if (row0 >= rows) return;
    const uint8_t *wr[R];
    for (int r = 0; r < R; ++r) wr[r] = w + row_bytes<F>(cols) * min(row0 + r, rows - 1);
    float acc[R] = {};
#pragma unroll 2
    for (int u = lane; u < cols / 32; u += 32) {
        XBlock xb;
        const uint4 *xq = reinterpret_cast<const uint4 *>(x.q) + 2 * u;
        for (int h = 0; h < 2; ++h) {
            uint4 v = __ldg(xq + h);
            xb.q[4 * h] = v.x, xb.q[4 * h + 1] = v.y, xb.q[4 * h + 2] = v.z, xb.q[4 * h + 3] = v.w;
        }
        xb.s = x.s[u];
        for (int r = 0; r < R; ++r) acc[r] += F::dot_q8_1(wr[r], u, xb);
    }
    for (int r = 0; r < R; ++r) {
        float sum = warp_reduce_sum(acc[r]);
        if (lane == 0 && row0 + r < rows) y[row0 + r] = sum;
    }
}

size_t matvec_scratch_bytes(int cols) {
    return q8_1_scales_offset(cols) + (size_t(cols) + 31) / 32 * sizeof(block_q8_1_scale);
}

namespace {

// ORCD_MATVEC: "f32" takes the plain path for every format; unset, empty or "q8_1" the
// integer path for the quantized formats. Read per call, so that tests can take both.
orcd_status plain_path(bool *plain) {
    const char *m = std::getenv("ORCD_MATVEC");
    *plain = m && std::strcmp(m, "f32") == 0;
    if (*plain || !m || !*m || std::strcmp(m, "q8_1") == 0) return ORCD_OK;
    return fail(ORCD_ERR_INVALID, "ORCD_MATVEC=%s: use f32 (plain float path) or q8_1 (integer "
                "path, the default)", m);
}

// Rows per warp: the most (x read once for more rows) that still gives every SM two blocks.
orcd_status rows_per_warp(int rows, int *r) {
    int device = 0, sms = 0;
    ORCD_CUDA(cudaGetDevice(&device));
    ORCD_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    *r = 1;
    for (int cand : {4, 2})
        if (*r == 1 && (rows + kMatvecWarps * cand - 1) / (kMatvecWarps * cand) >= 2 * sms) *r = cand;
    return ORCD_OK;
}

template <class F, int R>
void launch_q8_1(const uint8_t *w, XQ8_1 x, float *y, int rows, int cols, cudaStream_t stream) {
    unsigned blocks = unsigned((rows + kMatvecWarps * R - 1) / (kMatvecWarps * R));
    matvec_q8_1_kernel<F, R><<<blocks, kMatvecWarps * 32, 0, stream>>>(w, x, y, rows, cols);
}

template <class F>
orcd_status matvec_q8_1(const uint8_t *w, const float *x, float *y, int rows, int cols,
                        void *scratch, cudaStream_t stream) {
    if (!scratch)
        return fail(ORCD_ERR_INVALID, "matvec: the integer path needs matvec_scratch_bytes(%d) = "
                    "%zu bytes of scratch, got none", cols, matvec_scratch_bytes(cols));
    int r = 1;
    ORCD_TRY(rows_per_warp(rows, &r));
    uint8_t *s = static_cast<uint8_t *>(scratch);
    XQ8_1 xq{reinterpret_cast<int8_t *>(s),
             reinterpret_cast<block_q8_1_scale *>(s + q8_1_scales_offset(cols))};
    unsigned qblocks = unsigned((cols + kQuantizeThreads - 1) / kQuantizeThreads);
    quantize_q8_1_kernel<<<qblocks, kQuantizeThreads, 0, stream>>>(x, xq, cols);
    if (r == 4) launch_q8_1<F, 4>(w, xq, y, rows, cols, stream);
    else if (r == 2) launch_q8_1<F, 2>(w, xq, y, rows, cols, stream);
    else launch_q8_1<F, 1>(w, xq, y, rows, cols, stream);
    return check(cudaGetLastError(), "matvec (q8_1) kernel launch");
}

}  // namespace

orcd_status matvec(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   void *scratch, cudaStream_t stream) {
    return with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(check_row<F>(cols, "matvec"));
        if (rows <= 0) return fail(ORCD_ERR_INVALID, "matvec: %d rows", rows);
        bool plain = true;
        ORCD_TRY(plain_path(&plain));
        const uint8_t *wb = static_cast<const uint8_t *>(w);
        if constexpr (F::integer_dot)
            if (!plain) return matvec_q8_1<F>(wb, x, y, rows, cols, scratch, stream);
        unsigned blocks = unsigned((rows + kMatvecWarps - 1) / kMatvecWarps);
        matvec_kernel<F><<<blocks, kMatvecWarps * 32, 0, stream>>>(wb, x, y, rows, cols);
        return check(cudaGetLastError(), "matvec kernel launch");
    });
}

}  // namespace orcd
