// A long prompt's matmul as a dense F16 product: the weight matrix is dequantized to F16 in
// scratch (a slab of rows at a time, the same halves the other paths put in shared memory),
// X rounded to F16 once, then a block of eight warps owns 128 tokens x 128 rows and streams
// both tiles through a ring of kDenseStages shared-memory stages with cp.async (the next two
// steps' loads in flight while the tensor cores multiply one), its warps reading fragments with
// ldmatrix (the next 16 columns' while multiplying these) into mma.sync m16n8k16. The quantized path's blocks waited on every step's loads
// before dequantizing them (40 % of their stalls, matmul.cu's wide kernel).
//
// The same bits as every other path (ops.cuh): each 16-column chunk is one HMMA of the same
// halves into the same F32 accumulators (wmma's 16 x 16 x 16 is two of them), chunk by chunk
// in order from zero within each split of kSplitCols columns, the splits' sums folded in
// order, over the same 64-column extent as the quantized kernels (the halves past `cols` are
// zero).
#include <algorithm>
#include <cstddef>
#include "context.cuh"
#include "matmul.cuh"
#include "matmul_dense.cuh"
#include "overlap.cuh"
#include "quant.cuh"

namespace orcd {

// A block of eight warps owns 128 tokens x 128 rows, warp w the 64 tokens 64 (w / 4).. by the
// 32 rows 32 (w % 4)..; a stage holds 64 columns of both tiles, three stages in the ring.
constexpr int kDenseTile = 128, kDenseThreads = 256, kDenseK = 64, kDenseStages = 3;
constexpr int kDenseLd = kDenseK + 8;  // padded: ldmatrix's eight rows fall in distinct banks
constexpr int kDenseWarpTokens = 64, kDenseWarpRows = 32;
constexpr int kDenseRowWarps = kDenseTile / kDenseWarpRows;
constexpr int kDenseI = kDenseWarpTokens / 16, kDenseJ = kDenseWarpRows / 8;  // m16 x n8 tiles
constexpr int kDenseCopies = kDenseTile * kDenseK * 2 / 16 / kDenseThreads;  // 16 B, a tile
constexpr int kDenseCopyRows = kDenseThreads * 16 / (kDenseK * 2);  // rows apart a thread's
constexpr int kDenseLdOut = kDenseTile + 4;
static_assert(kSplitCols % kDenseK == 0 && kDenseK == kTileK, "stages end on splits");
static_assert(kDenseRowWarps * (kDenseTile / kDenseWarpTokens) * 32 == kDenseThreads,
              "the warps' sub-tiles cover the tile");

struct DenseStage {
    __half x[kDenseTile][kDenseLd], w[kDenseTile][kDenseLd];
};
// The sums of the splits before this one, a float4 per (fragment, thread): each thread's own,
// folded in shared memory so that registers hold only the split's sums (255 registers and
// spills in the loop with both).
using DenseTotals = float4[kDenseI * kDenseJ][kDenseThreads];
using DenseOut = float[kDenseTile][kDenseLdOut];  // the sums, in the stages' place at the end
constexpr size_t kDenseRing = kDenseStages * sizeof(DenseStage);
constexpr size_t kDenseTotalsAt = kDenseRing > sizeof(DenseOut) ? kDenseRing : sizeof(DenseOut);
constexpr size_t kDenseSmem = kDenseTotalsAt + sizeof(DenseTotals);

// ---- the F16 operands -------------------------------------------------------------------

// Rows [0, rows) of W (quantized rows of `cols`) into w16 (rows of dense_ld(cols) halves, zero
// past cols): a thread a run of 16, dequantized and rounded exactly as the quantized kernels
// stage them.
template <class F>
__global__ void dense_weights_kernel(const uint8_t *__restrict__ w, __half *__restrict__ w16,
                                     int rows, int cols) {
    allow_next_kernel();
    wait_for_previous_kernel();  // the scratch may still be read by the matmul before
    int ld = dense_ld(cols), runs = ld / kRun;
    size_t run = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (run >= size_t(rows) * runs) return;
    int r = int(run / runs), k = int(run % runs) * kRun;
    float v[kRun];
    if (k < cols) dequant16<F>(w + row_bytes<F>(cols) * r, k, v);
    else for (float &e : v) e = 0.0f;
    store_run(w16 + size_t(r) * ld + k, v);
}

// X (n rows of `cols` floats) into x16 (rows of dense_ld(cols) halves, zero past cols).
__global__ void dense_tokens_kernel(const float *__restrict__ x, __half *__restrict__ x16, int n,
                                    int cols) {
    allow_next_kernel();
    wait_for_previous_kernel();
    int ld = dense_ld(cols), runs = ld / kRun;
    size_t run = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (run >= size_t(n) * runs) return;
    int t = int(run / runs), k = int(run % runs) * kRun;
    float v[kRun];
    if (k < cols) load_x_run(x + size_t(t) * cols + k, v);
    else for (float &e : v) e = 0.0f;
    store_run(x16 + size_t(t) * ld + k, v);
}

// ---- the product ------------------------------------------------------------------------

// 16 bytes from global memory to the shared address dst, asynchronously; zeros where !valid.
__device__ __forceinline__ void copy16(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void copies_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int Pending>
__device__ __forceinline__ void copies_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}

__device__ __forceinline__ void ldmatrix4(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

// d += a b: 16 tokens x 8 rows x 16 columns, F16 in, F32 accumulators.
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm(  // not volatile: a pure function of its registers, free to move past other loads
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

using DenseAcc = float[kDenseI][kDenseJ][4];
struct Fragments {
    uint32_t a[kDenseI][4], b[kDenseJ / 2][4];
};

// The warp's fragments of the 16 columns at byte offset `at` into a stage (the lane's ldmatrix
// rows from x_lane, w_lane: addresses in stage 0).
__device__ __forceinline__ void load_fragments(Fragments &f, uint32_t x_lane, uint32_t w_lane,
                                               uint32_t at) {
#pragma unroll
    for (int i = 0; i < kDenseI; ++i) ldmatrix4(f.a[i], x_lane + at + 16 * i * kDenseLd * 2);
#pragma unroll
    for (int j = 0; j < kDenseJ / 2; ++j)  // two 8-row fragments a load
        ldmatrix4(f.b[j], w_lane + at + 16 * j * kDenseLd * 2);
}

__device__ __forceinline__ void multiply(DenseAcc &acc, const Fragments &f) {
#pragma unroll
    for (int i = 0; i < kDenseI; ++i)
#pragma unroll
        for (int j = 0; j < kDenseJ; ++j)
            mma16816(acc[i][j], f.a[i], f.b[j / 2][j % 2 * 2], f.b[j / 2][j % 2 * 2 + 1]);
}

// A block per 128 tokens (blockIdx.x: the tiles sharing a slab of W run side by side) x 128
// rows (blockIdx.y). y, ep.bias: at the slab's first row; ep.ld: the whole row of y.
__global__ void __launch_bounds__(kDenseThreads, 1)
matmul_dense_kernel(const __half *__restrict__ w16, const __half *__restrict__ x16,
                    float *__restrict__ y, int rows, int cols, int n, MatmulEpilogue ep) {
    extern __shared__ __align__(128) uint8_t smem[];
    DenseTotals &totals = *reinterpret_cast<DenseTotals *>(smem + kDenseTotalsAt);
    allow_next_kernel();
    wait_for_previous_kernel();
    int ld = dense_ld(cols), steps = ld / kDenseK, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int tok0 = blockIdx.x * kDenseTile, row0 = blockIdx.y * kDenseTile;
    int wt = warp / kDenseRowWarps * kDenseWarpTokens, wr = warp % kDenseRowWarps * kDenseWarpRows;
    bool busy = tok0 + wt < n;  // a warp whose tokens all lie past the prompt multiplies nothing

    // This thread's copies: tile rows r0 + kDenseCopyRows c, 16 bytes from column k; a row past
    // the matrix copies nothing and zero-fills (from a valid address).
    int r0 = threadIdx.x / (kDenseK / 8), k = threadIdx.x % (kDenseK / 8) * 8;
    const __half *x_src = x16 + size_t(tok0 + r0) * ld + k, *w_src = w16 + size_t(row0 + r0) * ld + k;
    size_t copy_stride = size_t(kDenseCopyRows) * ld;
    uint32_t ring = uint32_t(__cvta_generic_to_shared(smem));
    uint32_t x_dst = ring + (r0 * kDenseLd + k) * 2;
    uint32_t w_dst = x_dst + uint32_t(offsetof(DenseStage, w));
    auto load_stage = [&](int step) {
        uint32_t at = uint32_t(step % kDenseStages * sizeof(DenseStage));
        size_t col = size_t(step) * kDenseK;
#pragma unroll
        for (int c = 0; c < kDenseCopies; ++c) {
            bool x_in = tok0 + r0 + c * kDenseCopyRows < n;
            bool w_in = row0 + r0 + c * kDenseCopyRows < rows;
            copy16(x_dst + at + c * kDenseCopyRows * kDenseLd * 2,
                   x_in ? x_src + c * copy_stride + col : x16, x_in);
            copy16(w_dst + at + c * kDenseCopyRows * kDenseLd * 2,
                   w_in ? w_src + c * copy_stride + col : w16, w_in);
        }
    };
    // The lane's ldmatrix rows: A, tokens wt + lane % 16 at column 8 (lane / 16); B, rows wr +
    // 8 (lane / 16) + lane % 8 at column 8 (lane / 8 % 2).
    uint32_t x_lane = ring + ((wt + lane % 16) * kDenseLd + lane / 16 * 8) * 2;
    uint32_t w_lane = ring + uint32_t(offsetof(DenseStage, w)) +
                      ((wr + lane / 16 * 8 + lane % 8) * kDenseLd + lane / 8 % 2 * 8) * 2;

    DenseAcc acc;
    for (auto &i : acc)
        for (auto &j : i)
            for (float &e : j) e = 0.0f;
#pragma unroll
    for (int s = 0; s < kDenseStages - 1; ++s) {
        if (s < steps) load_stage(s);
        copies_commit();
    }
    for (int step = 0; step < steps; ++step) {
        copies_wait<kDenseStages - 2>();
        __syncthreads();  // this step's stage is in; the one before it is read by every warp
        if (step + kDenseStages - 1 < steps) load_stage(step + kDenseStages - 1);
        copies_commit();
        if (busy) {
            uint32_t at = uint32_t(step % kDenseStages * sizeof(DenseStage));
            Fragments f[2];
            load_fragments(f[0], x_lane, w_lane, at);
#pragma unroll
            for (int kk = 0; kk < kDenseK / 16; ++kk) {  // the next chunk's loads in flight
                if (kk + 1 < kDenseK / 16)
                    load_fragments(f[(kk + 1) % 2], x_lane, w_lane, at + (kk + 1) * 32);
                multiply(acc, f[kk % 2]);
            }
        }
        int k_end = (step + 1) * kDenseK;
        if (busy && (k_end == ld || k_end % kSplitCols == 0)) {  // the split's last step
            bool first = k_end <= kSplitCols;
#pragma unroll
            for (int i = 0; i < kDenseI; ++i)
#pragma unroll
                for (int j = 0; j < kDenseJ; ++j) {
                    float4 &t = totals[i * kDenseJ + j][threadIdx.x];
                    float *a = acc[i][j];
                    t = first ? make_float4(a[0], a[1], a[2], a[3])
                              : make_float4(t.x + a[0], t.y + a[1], t.z + a[2], t.w + a[3]);
                    a[0] = a[1] = a[2] = a[3] = 0.0f;
                }
        }
    }
    copies_wait<0>();
    __syncthreads();  // every stage read: the sums take their place
    DenseOut &out = *reinterpret_cast<DenseOut *>(smem);
    if (busy) {
#pragma unroll
        for (int i = 0; i < kDenseI; ++i)
#pragma unroll
            for (int j = 0; j < kDenseJ; ++j) {
                int t = wt + 16 * i + lane / 4, r = wr + 8 * j + lane % 4 * 2;
                float4 v = totals[i * kDenseJ + j][threadIdx.x];
                out[t][r] = v.x, out[t][r + 1] = v.y, out[t + 8][r] = v.z, out[t + 8][r + 1] = v.w;
            }
    }
    __syncthreads();
    int valid = min(kDenseTile, n - tok0) * kDenseTile;
    for (int e = threadIdx.x; e < valid; e += kDenseThreads)
        store_out<kDenseTile>(y, ep, out[e / kDenseTile][e % kDenseTile], e, rows, row0, tok0);
}

// ---- the launch -------------------------------------------------------------------------

static unsigned blocks_for(size_t threads, int per_block) {
    return unsigned((threads + per_block - 1) / per_block);
}

template <class F>
orcd_status matmul_dense(const uint8_t *w, const float *x, float *y, int rows, int cols, int n,
                         const MatmulScratch &scratch, cudaStream_t stream, MatmulEpilogue ep) {
    int ld = dense_ld(cols);
    bool whole = scratch.dense_w_halves >= size_t(rows) * ld;  // else whole tiles of rows
    int slab = whole ? rows : int(scratch.dense_w_halves / ld / kDenseTile * kDenseTile);
    if (slab <= 0 || size_t(n) * ld > scratch.dense_x_halves)
        return fail(ORCD_ERR_INVALID, "matmul: dense scratch of %zu + %zu halves is too small "
                    "for %d x %d, %d tokens", scratch.dense_w_halves, scratch.dense_x_halves,
                    rows, cols, n);
    static const cudaError_t allowed = cudaFuncSetAttribute(
        matmul_dense_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kDenseSmem));
    ORCD_CUDA(allowed);
    constexpr int kConvertThreads = 256;
    bool overlap = scratch.overlap;
    ORCD_TRY(check(launch(dense_tokens_kernel, blocks_for(size_t(n) * ld / kRun, kConvertThreads),
                          kConvertThreads, 0, stream, overlap, x, scratch.dense_x, n, cols),
                   "matmul dense tokens launch"));
    if (!ep.ld) ep.ld = rows;
    for (int r0 = 0; r0 < rows; r0 += slab) {
        int slab_rows = std::min(slab, rows - r0);
        ORCD_TRY(check(launch(dense_weights_kernel<F>,
                              blocks_for(size_t(slab_rows) * ld / kRun, kConvertThreads),
                              kConvertThreads, 0, stream, overlap, w + row_bytes<F>(cols) * r0,
                              scratch.dense_w, slab_rows, cols),
                       "matmul dense weights launch"));
        MatmulEpilogue slab_ep = ep;
        if (slab_ep.bias) slab_ep.bias += r0;
        dim3 grid(unsigned((n + kDenseTile - 1) / kDenseTile),
                  unsigned((slab_rows + kDenseTile - 1) / kDenseTile));
        ORCD_TRY(check(launch(matmul_dense_kernel, grid, kDenseThreads, kDenseSmem, stream,
                              overlap, scratch.dense_w, scratch.dense_x, y + r0, slab_rows, cols,
                              n, slab_ep),
                       "matmul dense kernel launch"));
    }
    return ORCD_OK;
}

#define ORCD_DENSE_INSTANCE(name)                                                            \
    template orcd_status matmul_dense<fmt::name>(const uint8_t *, const float *, float *, int, \
                                                 int, int, const MatmulScratch &,             \
                                                 cudaStream_t, MatmulEpilogue);
ORCD_INTEGER_FORMATS(ORCD_DENSE_INSTANCE)
ORCD_FLOAT_FORMATS(ORCD_DENSE_INSTANCE)
#undef ORCD_DENSE_INSTANCE

}  // namespace orcd
