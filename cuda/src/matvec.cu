// Decode: y = W x for one token, on two paths behind one switch (ORCD_MATVEC):
//  - the integer path (default) for quantized weights: each block first quantizes x to Q8_1
//    blocks of 32 in shared memory (int8 and a scale, orcd.quant.activations), then each lane
//    takes one 32-value unit of a row at a time and dots it in integers (dp4a, F::Unit), one
//    multiply by the scales per unit. A warp owns R rows and reads each x unit once for all.
//  - the plain path (MatvecPath::f32, and always for F32/F16/BF16 weights, or rows too long
//    for shared memory): one warp per row walks the row in runs of 16 values, decodes each run
//    to floats in registers and dots it with the F32 x (read through L1).
// Both reduce each row across its warp with shuffles in a fixed order: no atomics, the same
// bits from run to run.
#include "context.cuh"
#include "matvec.cuh"
#include "ops.cuh"
#include "quant.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kMatvecWarps = 4;
// Blocks per SM the integer kernel is compiled for: without it ptxas trades the loads in flight
// for fewer registers (it sinks each load to its use); with 3 (<= 170 registers) none spills.
constexpr int kMinBlocks = 3;

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

// Shared memory a block may take without opting in: x as Q8_1 takes 1 + 8/32 bytes a value
// (int8, then an 8-byte scale and sum per 32), so rows up to about 39,300 values.
constexpr size_t kMaxQ8_1Bytes = 48 << 10;

// A block of kMatvecWarps warps, each on R rows.
template <class F, int R>
__global__ void __launch_bounds__(kMatvecWarps * 32, kMinBlocks)
matvec_q8_1_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x,
                   float *__restrict__ y, int rows, int cols) {
    extern __shared__ uint4 smem[];
    int8_t *base = reinterpret_cast<int8_t *>(smem);
    XQ8_1 xq{base, reinterpret_cast<block_q8_1_scale *>(base + q8_1_scales_offset(cols))};
    quantize_q8_1(x, xq, cols);
    __syncthreads();
    int row0 = (blockIdx.x * kMatvecWarps + threadIdx.x / 32) * R;
    if (row0 < rows) matvec_rows<F, R>(w, xq, y, row0, rows, cols);
}

namespace {

template <class F, int R>
orcd_status launch_q8_1(const uint8_t *w, const float *x, float *y, int rows, int cols,
                        cudaStream_t stream) {
    unsigned blocks = unsigned((rows - 1) / (kMatvecWarps * R) + 1);
    matvec_q8_1_kernel<F, R><<<blocks, kMatvecWarps * 32, q8_1_bytes(cols), stream>>>(
        w, x, y, rows, cols);
    return check(cudaGetLastError(), "matvec (q8_1) kernel launch");
}

// Rows per warp: the most (x read once for more rows) that still gives every SM two blocks'
// worth of row groups.
template <class F>
orcd_status matvec_q8_1(const uint8_t *w, const float *x, float *y, int rows, int cols,
                        cudaStream_t stream) {
    int sms = 1;
    ORCD_TRY(multiprocessors(&sms));
    auto enough = [&](int r) { return (rows - 1) / (kMatvecWarps * r) + 1 >= 2 * sms; };
    if (enough(4)) return launch_q8_1<F, 4>(w, x, y, rows, cols, stream);
    if (enough(2)) return launch_q8_1<F, 2>(w, x, y, rows, cols, stream);
    return launch_q8_1<F, 1>(w, x, y, rows, cols, stream);
}

}  // namespace

orcd_status matvec(MatvecPath path, int ggml_type, const void *w, const float *x, float *y,
                   int rows, int cols, cudaStream_t stream) {
    return with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(check_row<F>(cols, "matvec"));
        if (rows <= 0) return fail(ORCD_ERR_INVALID, "matvec: %d rows", rows);
        bool plain = path == MatvecPath::f32;
        const uint8_t *wb = static_cast<const uint8_t *>(w);
        if constexpr (F::integer_dot)
            if (!plain && q8_1_bytes(cols) <= kMaxQ8_1Bytes)
                return matvec_q8_1<F>(wb, x, y, rows, cols, stream);
        unsigned blocks = unsigned((rows + kMatvecWarps - 1) / kMatvecWarps);
        matvec_kernel<F><<<blocks, kMatvecWarps * 32, 0, stream>>>(wb, x, y, rows, cols);
        return check(cudaGetLastError(), "matvec kernel launch");
    });
}

}  // namespace orcd
