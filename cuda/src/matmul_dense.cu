// A long prompt's matmul as a dense F16 product: the weight matrix is dequantized to F16 in
// scratch (a slab of rows at a time, the same halves the other paths put in shared memory),
// X rounded to F16 once, then a block of four warps owns 128 tokens x 64 rows and streams
// both tiles through shared-memory stages with cp.async (the next step's loads in flight while
// the tensor cores multiply this one), its warps reading fragments with ldmatrix (the next 16
// columns' while multiplying these) into mma.sync m16n8k16. The quantized path's blocks waited
// on every step's loads before dequantizing them (40 % of their stalls, matmul.cu's wide
// kernel).
//
// The same bits as every other path (ops.cuh): each 16-column chunk is one HMMA of the same
// halves into the same F32 accumulators (wmma's 16 x 16 x 16 is two of them), chunk by chunk
// in order from zero within each split of kSplitCols columns, the splits' sums folded in
// order, over the same 64-column extent as the quantized kernels (the halves past `cols` are
// zero).
#include <algorithm>
#include <atomic>
#include <cstddef>
#include "context.cuh"
#include "copy_async.cuh"
#include "matmul.cuh"
#include "matmul_dense.cuh"
#include "overlap.cuh"
#include "quant.cuh"
#include "wgmma.cuh"

namespace orcd {

// A block owns 128 tokens x S::rows rows in warps of 64 tokens x 32 rows (warp w: tokens
// 64 (w / row_warps).., rows 32 (w % row_warps)..); a stage holds 64 columns of both tiles.
constexpr int kDenseWarpTokens = 64, kDenseWarpRows = 32;
constexpr int kDenseI = kDenseWarpTokens / 16, kDenseJ = kDenseWarpRows / 8;  // m16 x n8 tiles

// S::k columns a stage (rows padded by 8 halves: ldmatrix's eight rows fall in distinct banks).
template <int Rows, int K, int Stages, int BlocksPerSm>
struct DenseShape {
    static constexpr int rows = Rows, k = K, ld = K + 8, stages = Stages;
    static constexpr int blocks_per_sm = BlocksPerSm;
    static constexpr int row_warps = Rows / kDenseWarpRows;
    static constexpr int threads = kDenseTokens / kDenseWarpTokens * row_warps * 32;
    static constexpr int copy_rows = threads * 16 / (K * 2);  // a thread's copies apart
    static constexpr int ld_out = Rows + 4;
    struct Stage {
        __half x[kDenseTokens][ld], w[Rows][ld];
    };
    // The sums of the splits before this one, a float4 per (fragment, thread): each thread's
    // own, folded in shared memory so that registers hold only the split's sums (255 registers
    // and spills in the loop with both).
    using Totals = float4[kDenseI * kDenseJ][threads];
    using Out = float[kDenseTokens][ld_out];  // the sums at the end, over the ring and totals
    static constexpr size_t totals_at = Stages * sizeof(Stage);
    static constexpr size_t smem = totals_at + sizeof(Totals) > sizeof(Out)
                                       ? totals_at + sizeof(Totals) : sizeof(Out);
    static_assert(kDenseSlabRows % Rows == 0 && Rows % kDenseWarpRows == 0, "whole tiles");
    static_assert(kSplitCols % K == 0 && kTileK % K == 0, "stages end on splits, and on the "
                  "quantized kernels' extent of columns");
    static_assert(kDenseTokens % copy_rows == 0 && Rows % copy_rows == 0, "whole copies");
};

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
template <int Ld>
__device__ __forceinline__ void load_fragments(Fragments &f, uint32_t x_lane, uint32_t w_lane,
                                               uint32_t at) {
#pragma unroll
    for (int i = 0; i < kDenseI; ++i) ldmatrix4(f.a[i], x_lane + at + 16 * i * Ld * 2);
#pragma unroll
    for (int j = 0; j < kDenseJ / 2; ++j)  // two 8-row fragments a load
        ldmatrix4(f.b[j], w_lane + at + 16 * j * Ld * 2);
}

__device__ __forceinline__ void multiply(DenseAcc &acc, const Fragments &f) {
#pragma unroll
    for (int i = 0; i < kDenseI; ++i)
#pragma unroll
        for (int j = 0; j < kDenseJ; ++j)
            mma16816(acc[i][j], f.a[i], f.b[j / 2][j % 2 * 2], f.b[j / 2][j % 2 * 2 + 1]);
}

// A block per 128 tokens (blockIdx.x: the tiles sharing a slab of W run side by side) x
// S::rows rows (blockIdx.y). y, ep.bias: at the slab's first row; ep.ld: the whole row of y.
template <class S>
__global__ void __launch_bounds__(S::threads, S::blocks_per_sm)
matmul_dense_kernel(const __half *__restrict__ w16, const __half *__restrict__ x16,
                    float *__restrict__ y, int rows, int cols, int n, MatmulEpilogue ep) {
    extern __shared__ __align__(128) uint8_t smem[];
    auto &totals = *reinterpret_cast<typename S::Totals *>(smem + S::totals_at);
    allow_next_kernel();
    wait_for_previous_kernel();
    int ld = dense_ld(cols), steps = ld / S::k, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int tok0 = blockIdx.x * kDenseTokens, row0 = blockIdx.y * S::rows;
    int wt = warp / S::row_warps * kDenseWarpTokens, wr = warp % S::row_warps * kDenseWarpRows;
    bool busy = tok0 + wt < n;  // a warp whose tokens all lie past the prompt multiplies nothing

    // This thread's copies: tile rows r0 + S::copy_rows c, 16 bytes from column k; a row past
    // the matrix copies nothing and zero-fills (from a valid address).
    int r0 = threadIdx.x / (S::k / 8), k = threadIdx.x % (S::k / 8) * 8;
    const __half *x_src = x16 + size_t(tok0 + r0) * ld + k;
    const __half *w_src = w16 + size_t(row0 + r0) * ld + k;
    size_t copy_stride = size_t(S::copy_rows) * ld;
    uint32_t ring = uint32_t(__cvta_generic_to_shared(smem));
    uint32_t x_dst = ring + (r0 * S::ld + k) * 2;
    uint32_t w_dst = x_dst + uint32_t(offsetof(typename S::Stage, w));
    auto load_stage = [&](int step) {
        uint32_t at = uint32_t(step % S::stages * sizeof(typename S::Stage));
        size_t col = size_t(step) * S::k;
#pragma unroll
        for (int c = 0; c < kDenseTokens / S::copy_rows; ++c) {
            bool in = tok0 + r0 + c * S::copy_rows < n;
            copy16(x_dst + at + c * S::copy_rows * S::ld * 2,
                   in ? x_src + c * copy_stride + col : x16, in);
        }
#pragma unroll
        for (int c = 0; c < S::rows / S::copy_rows; ++c) {
            bool in = row0 + r0 + c * S::copy_rows < rows;
            copy16(w_dst + at + c * S::copy_rows * S::ld * 2,
                   in ? w_src + c * copy_stride + col : w16, in);
        }
    };
    // The lane's ldmatrix rows: A, tokens wt + lane % 16 at column 8 (lane / 16); B, rows wr +
    // 8 (lane / 16) + lane % 8 at column 8 (lane / 8 % 2).
    uint32_t x_lane = ring + ((wt + lane % 16) * S::ld + lane / 16 * 8) * 2;
    uint32_t w_lane = ring + uint32_t(offsetof(typename S::Stage, w)) +
                      ((wr + lane / 16 * 8 + lane % 8) * S::ld + lane / 8 % 2 * 8) * 2;

    DenseAcc acc;
    for (auto &i : acc)
        for (auto &j : i)
            for (float &e : j) e = 0.0f;
#pragma unroll
    for (int s = 0; s < S::stages - 1; ++s) {
        if (s < steps) load_stage(s);
        copies_commit();
    }
    for (int step = 0; step < steps; ++step) {
        copies_wait<S::stages - 2>();
        __syncthreads();  // this step's stage is in; the one before it is read by every warp
        if (step + S::stages - 1 < steps) load_stage(step + S::stages - 1);
        copies_commit();
        if (busy) {
            uint32_t at = uint32_t(step % S::stages * sizeof(typename S::Stage));
            Fragments f[2];
            load_fragments<S::ld>(f[0], x_lane, w_lane, at);
#pragma unroll
            for (int kk = 0; kk < S::k / 16; ++kk) {  // the next chunk's loads in flight
                if (kk + 1 < S::k / 16)
                    load_fragments<S::ld>(f[(kk + 1) % 2], x_lane, w_lane, at + (kk + 1) * 32);
                multiply(acc, f[kk % 2]);
            }
        }
        int k_end = (step + 1) * S::k;
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
    float4 sums[kDenseI * kDenseJ];  // the thread's totals out of the way of the tile's sums
    if (busy)
        for (int f = 0; f < kDenseI * kDenseJ; ++f) sums[f] = totals[f][threadIdx.x];
    __syncthreads();  // every stage and total read: the tile's sums take their place
    auto &out = *reinterpret_cast<typename S::Out *>(smem);
    if (busy) {
#pragma unroll
        for (int i = 0; i < kDenseI; ++i)
#pragma unroll
            for (int j = 0; j < kDenseJ; ++j) {
                int t = wt + 16 * i + lane / 4, r = wr + 8 * j + lane % 4 * 2;
                float4 v = sums[i * kDenseJ + j];
                out[t][r] = v.x, out[t][r + 1] = v.y, out[t + 8][r] = v.z, out[t + 8][r + 1] = v.w;
            }
    }
    __syncthreads();
    int valid = min(kDenseTokens, n - tok0) * S::rows;
    for (int e = threadIdx.x; e < valid; e += S::threads)
        store_out<S::rows>(y, ep, out[e / S::rows][e % S::rows], e, rows, row0, tok0);
}

// ---- the product on Hopper's warpgroup MMA (sm_90a) -------------------------------------

// Two warpgroups a block, each 64 tokens x all of the block's 96 or 128 rows, multiplying the
// stage's tiles where they lie in shared memory (wgmma): no fragments pass through registers, so
// a thread holds both its split's sums and the totals of the splits before (rows / 2 each). A stage
// holds 64 columns (128 bytes) of each tile row, in the 128-byte swizzle wgmma reads
// (wgmma.cuh). The same bits as mma.sync: each 16-column step is one product of the same halves
// into the same F32 sums, chunk by chunk from zero within a split (checked bit for bit on the
// H200 over 16.7 million sums, with and without a sum to add to, before this kernel was built).
constexpr int kWgStages = 5, kWgThreads = 256, kWgK = 64;
// A block's shape: 128 tokens x Rows rows (96 or 128: wgmma_m64k16's widths).
template <int Rows>
struct WgShape {
    static constexpr int rows = Rows, sums = Rows / 2;  // a thread's sums of the group's tile
    struct Stage {
        uint8_t x[kDenseTokens * 128], w[Rows * 128];  // tile rows of kWgK halves, swizzled
    };
    using Out = float[kDenseTokens][Rows + 4];  // the sums at the end, over the ring
    static constexpr size_t smem = 1024 + (kWgStages * sizeof(Stage) > sizeof(Out)
                                               ? kWgStages * sizeof(Stage) : sizeof(Out));
    static_assert(Rows % 32 == 0 && sizeof(Stage) % 1024 == 0, "whole copies, aligned atoms");
};
static_assert(kSplitCols % kWgK == 0 && kTileK % kWgK == 0, "stages end on splits");

// Whether this build's kernels for the current device have wgmma (an sm_90a binary).
__global__ void wgmma_built_kernel(int *out) { *out = ORCD_HAS_WGMMA ? 1 : 2; }

// Where a tile's splits are shared out over blocks (blockIdx.z: splits per * z ..): each block
// of the tile but the first stores its splits' sums one by one, the first the total of its
// own, in `partial` (per tile: slot 0 the first block's total, then one slot a later split, each
// a float4 of 64 per (q, thread) of the tile's threads), and the tile's last block to arrive
// (`done`, a zeroed counter per tile, zeroed again) folds them in order: the same bits as one
// block walking every split.
struct DenseSplits {
    float *partial = nullptr;
    int *done = nullptr;
    int per = 0;  // splits a block
};

// A block per 128 tokens (blockIdx.x) x S::rows rows (blockIdx.y) x per splits (blockIdx.z);
// y, ep as matmul_dense_kernel.
template <class S>
__global__ void __launch_bounds__(kWgThreads, 1)
matmul_wgmma_kernel(const __half *__restrict__ w16, const __half *__restrict__ x16,
                    float *__restrict__ y, int rows, int cols, int n, MatmulEpilogue ep,
                    DenseSplits sp) {
#if ORCD_HAS_WGMMA
    constexpr int kWgAhead = kWgStages - 2;  // stages loading while one is multiplied, one waits
    constexpr int kSplitSteps = kSplitCols / kWgK;
    extern __shared__ __align__(128) uint8_t smem_raw[];
    __shared__ bool last_block;
    uint32_t raw = uint32_t(__cvta_generic_to_shared(smem_raw)), pad = (1024 - raw % 1024) % 1024;
    uint32_t ring = raw + pad;  // the swizzle's atoms of 8 rows lie on 1,024-byte boundaries
    allow_next_kernel();
    wait_for_previous_kernel();
    int ld = dense_ld(cols), group = threadIdx.x / 128;
    int tok0 = blockIdx.x * kDenseTokens, row0 = blockIdx.y * S::rows;
    bool busy = tok0 + 64 * group < n;  // else every token of the group lies past the prompt
    int split0 = blockIdx.z * sp.per;   // the block's first split, and its first step
    int step0 = split0 * kSplitSteps, steps = min(ld / kWgK, step0 + sp.per * kSplitSteps) - step0;

    // This thread's copies: chunk c of tile rows r0 + 32 i (the same place in their swizzle
    // atom, 4,096 bytes apart); a row past the matrix zero-fills from a valid address.
    int r0 = threadIdx.x / 8, c = threadIdx.x % 8;
    const __half *x_src = x16 + size_t(tok0 + r0) * ld + c * 8;
    const __half *w_src = w16 + size_t(row0 + r0) * ld + c * 8;
    uint32_t dst = swizzled_chunk(r0, c);
    auto load_stage = [&](int step) {  // the block's step `step`
        uint32_t at = ring + uint32_t(step % kWgStages * sizeof(typename S::Stage)) + dst;
        size_t col = size_t(step0 + step) * kWgK;
#pragma unroll
        for (int i = 0; i < kDenseTokens / 32; ++i) {
            bool in = tok0 + r0 + 32 * i < n;
            copy16(at + offsetof(typename S::Stage, x) + 4096 * i,
                   in ? x_src + size_t(32 * i) * ld + col : x16, in);
        }
#pragma unroll
        for (int i = 0; i < S::rows / 32; ++i) {
            bool in = row0 + r0 + 32 * i < rows;
            copy16(at + offsetof(typename S::Stage, w) + 4096 * i,
                   in ? w_src + size_t(32 * i) * ld + col : w16, in);
        }
    };
    // The tile's slots of split sums (slot q's float4 of this thread at [q * kWgThreads]).
    int tile = blockIdx.y * gridDim.x + blockIdx.x, slots = col_splits(cols) - sp.per + 1;
    auto slot = [&](int at) {
        return reinterpret_cast<float4 *>(sp.partial) +
               (size_t(tile) * slots + at) * (S::sums / 4) * kWgThreads + threadIdx.x;
    };
    auto store = [&](float4 *to, const float (&v)[S::sums]) {
#pragma unroll
        for (int q = 0; q < S::sums / 4; ++q)
            __stcg(to + q * kWgThreads, make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2],
                                                    v[4 * q + 3]));
    };

    // The totals start at -0, which adds to any sum without changing its bits (+0 would turn a
    // first split's -0 into +0): the first split's sums are copied, as by the other paths.
    float acc[S::sums], total[S::sums];
#pragma unroll
    for (int i = 0; i < S::sums; ++i) acc[i] = 0.0f, total[i] = -0.0f;
#pragma unroll
    for (int s = 0; s < kWgAhead; ++s) {
        if (s < steps) load_stage(s);
        copies_commit();
    }
    // A split's steps, each waiting only for the step before it: the tensor cores run on past
    // the barrier. Every group multiplies, a group past the prompt's tokens on zeros (one
    // control path: ptxas serializes wgmma behind a divergent one).
    for (int first = 0; first < steps; first += kSplitSteps) {
        int last = min(steps, first + kSplitSteps);
        for (int step = first; step < last; ++step) {
            copies_wait<kWgAhead - 1>();
            shared_to_async_proxy();  // this thread's copies, seen by wgmma's reads
            // Every copy of this stage is in, and both groups' products of two steps ago are
            // done (each waited for them a step ago): their slot takes the copies kWgAhead on.
            __syncthreads();
            if (step + kWgAhead < steps) load_stage(step + kWgAhead);
            copies_commit();
            uint32_t at = ring + uint32_t(step % kWgStages * sizeof(typename S::Stage));
            uint64_t a = swizzled_tile(at + offsetof(typename S::Stage, x) + 64 * 128 * group);
            uint64_t b = swizzled_tile(at + offsetof(typename S::Stage, w));
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < kWgK / 16; ++k)  // 16 columns: 32 bytes on in the swizzle
                wgmma_m64k16<S::rows>(acc, a + 2 * k, b + 2 * k, 1);
            wgmma_commit();
            wgmma_wait<1>();
        }
        wgmma_wait<0>();  // the split's sums, whole: into the totals, or a slot of their own
        hold(acc);
        if (blockIdx.z == 0) {
#pragma unroll
            for (int i = 0; i < S::sums; ++i) total[i] += acc[i];
        } else {
            store(slot(split0 + first / kSplitSteps - sp.per + 1), acc);
        }
#pragma unroll
        for (int i = 0; i < S::sums; ++i) acc[i] = 0.0f;
    }
    copies_wait<0>();
    if (gridDim.z > 1) {  // the tile's last block folds every slot in order
        if (blockIdx.z == 0) store(slot(0), total);
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) {
            last_block = atomicAdd(&sp.done[tile], 1) == int(gridDim.z) - 1;
            if (last_block) sp.done[tile] = 0;
        }
        __syncthreads();
        if (!last_block) return;
        __threadfence();
        for (int at = 0; at < slots; ++at) {
            const float4 *from = slot(at);
#pragma unroll
            for (int q = 0; q < S::sums / 4; ++q) {
                float4 v = __ldcg(from + q * kWgThreads);
                total[4 * q] = (at ? total[4 * q] : -0.0f) + v.x;
                total[4 * q + 1] = (at ? total[4 * q + 1] : -0.0f) + v.y;
                total[4 * q + 2] = (at ? total[4 * q + 2] : -0.0f) + v.z;
                total[4 * q + 3] = (at ? total[4 * q + 3] : -0.0f) + v.w;
            }
        }
    }
    __syncthreads();  // every stage read: the tile's sums take their place
    auto &out = *reinterpret_cast<typename S::Out *>(smem_raw + pad);
    if (busy) {
        int lane = threadIdx.x % 32, t0 = 64 * group + 16 * (threadIdx.x / 32 % 4) + lane / 4;
#pragma unroll
        for (int j = 0; j < S::rows / 8; ++j)
#pragma unroll
            for (int h = 0; h < 4; ++h)
                out[t0 + 8 * (h / 2)][8 * j + 2 * (lane % 4) + h % 2] = total[4 * j + h];
    }
    __syncthreads();
    int valid = min(kDenseTokens, n - tok0) * S::rows;
    for (int e = threadIdx.x; e < valid; e += kWgThreads)
        store_out<S::rows>(y, ep, out[e / S::rows][e % S::rows], e, rows, row0, tok0);
#else
    (void)w16, (void)x16, (void)y, (void)rows, (void)cols, (void)n, (void)ep, (void)sp;
#endif
}

// ---- the launch -------------------------------------------------------------------------

// The slab's product (rows of y and bias from its first) by Kernel, in blocks of Threads
// threads over 128 tokens x TileRows rows (x `splits` blocks a tile) with Smem bytes of shared
// memory; `more` follows the common parameters.
template <auto Kernel, int Threads, size_t Smem, int TileRows, class... More>
static orcd_status dense_product(const MatmulScratch &scratch, float *y, int slab_rows, int cols,
                                 int n, const MatmulEpilogue &ep, cudaStream_t stream, int splits,
                                 More... more) {
    static const cudaError_t allowed = cudaFuncSetAttribute(
        Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Smem));
    ORCD_CUDA(allowed);
    dim3 grid(unsigned(tiles_of(n, kDenseTokens)), unsigned(tiles_of(slab_rows, TileRows)),
              unsigned(splits));
    return check(launch(Kernel, grid, Threads, Smem, stream, scratch.overlap, scratch.dense_w,
                        scratch.dense_x, y, slab_rows, cols, n, ep, more...),
                 "matmul dense kernel launch");
}

// How a wgmma product of `tiles` tiles of `tile_rows` rows shares out its `splits` splits: over
// as many blocks a tile as keep them all in one wave (a tile whose blocks would leave most SMs
// idle: Qwen2.5's 896-row matrices at 512 tokens are 28 tiles), where the scratch holds their
// sums and counters and the scratch may split (MatmulScratch::split != 0); else one block a
// tile.
static orcd_status wgmma_splits(const MatmulScratch &scratch, int tiles, int tile_rows,
                                int splits, DenseSplits *out) {
    *out = {scratch.partial, scratch.done, splits};
    if (scratch.split == 0 || !scratch.partial || tiles > scratch.counters) return ORCD_OK;
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    for (int blocks = std::min(splits, sms / tiles); blocks > 1; --blocks) {
        int per = (splits + blocks - 1) / blocks;
        size_t slots = size_t(splits - per + 1);
        if (slots * tiles * kDenseTokens * tile_rows <= scratch.floats) {
            out->per = per;
            return ORCD_OK;
        }
    }
    return ORCD_OK;
}

// The slab's product on wgmma in blocks of shape S, its splits shared out by wgmma_splits.
template <class S>
static orcd_status wgmma_product(const MatmulScratch &scratch, float *y, int slab_rows, int cols,
                                 int n, const MatmulEpilogue &ep, cudaStream_t stream) {
    int splits = col_splits(cols);
    DenseSplits sp;
    ORCD_TRY(wgmma_splits(scratch, tiles_of(n, kDenseTokens) * tiles_of(slab_rows, S::rows),
                          S::rows, splits, &sp));
    return dense_product<matmul_wgmma_kernel<S>, kWgThreads, S::smem, S::rows>(
        scratch, y, slab_rows, cols, n, ep, stream, tiles_of(splits, sp.per), sp);
}

// The rows of a wgmma block for `rows` rows and n tokens: 96 where its tiles fill the SMs' waves
// better (Phi-3-mini's 9,216 rows at 512 tokens: 384 tiles, 2.9 waves of 132, rather than 288,
// 2.2 waves), counting a tile's time as its rows + 32 (its tokens' loads); 128 where the tiles
// would leave half the SMs idle (their splits are shared out instead).
static orcd_status wgmma_rows(int rows, int n, int *out) {
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    auto tiles = [&](int tile_rows) {
        return tiles_of(n, kDenseTokens) * tiles_of(rows, tile_rows);
    };
    auto cost = [&](int tile_rows) { return tiles_of(tiles(tile_rows), sms) * (tile_rows + 32); };
    *out = 2 * tiles(128) > sms && cost(96) < cost(128) ? 96 : 128;
    return ORCD_OK;
}

// 128 tokens x 64 rows, four warps, 64 columns a stage in two stages, two blocks an SM. H200,
// phi3 attn_qkv Q4_K at 512 tokens (orcd bench kernels): 141 TFLOP/s, against 137 for 128 x
// 128 in eight warps and three stages (one block an SM), 128 for 128 x 128 with 32 columns a
// stage and two blocks an SM, 129 for 128 x 64 so (three an SM).
using Dense = DenseShape<64, 64, 2, 2>;

template <class F>
orcd_status matmul_dense(const uint8_t *w, const float *x, float *y, int rows, int cols, int n,
                         const MatmulScratch &scratch, cudaStream_t stream, MatmulEpilogue ep) {
    int ld = dense_ld(cols), slab = dense_slab_rows(scratch.dense_w_halves, rows, cols);
    if (slab <= 0 || size_t(n) * ld > scratch.dense_x_halves)  // matmul() checked: a caller's bug
        return fail(ORCD_ERR_INVALID, "matmul: dense scratch of %zu + %zu halves is too small "
                    "for %d x %d, %d tokens", scratch.dense_w_halves, scratch.dense_x_halves,
                    rows, cols, n);
    constexpr int kConvertThreads = 256;
    auto convert_blocks = [](size_t runs) {  // a thread a run of kRun
        return unsigned(tiles_of(runs, size_t(kConvertThreads)));
    };
    bool overlap = scratch.overlap;
    ORCD_TRY(check(launch(dense_tokens_kernel, convert_blocks(size_t(n) * ld / kRun),
                          kConvertThreads, 0, stream, overlap, x, scratch.dense_x, n, cols),
                   "matmul dense tokens launch"));
    if (!ep.ld) ep.ld = rows;
    for (int r0 = 0; r0 < rows; r0 += slab) {
        int slab_rows = std::min(slab, rows - r0);
        ORCD_TRY(check(launch(dense_weights_kernel<F>,
                              convert_blocks(size_t(slab_rows) * ld / kRun),
                              kConvertThreads, 0, stream, overlap, w + row_bytes<F>(cols) * r0,
                              scratch.dense_w, slab_rows, cols),
                       "matmul dense weights launch"));
        MatmulEpilogue slab_ep = ep;
        if (slab_ep.bias) slab_ep.bias += r0;
        if (scratch.wgmma) {
            int tile_rows = 128;
            ORCD_TRY(wgmma_rows(slab_rows, n, &tile_rows));
            ORCD_TRY(tile_rows == 96 ? wgmma_product<WgShape<96>>(scratch, y + r0, slab_rows,
                                                                 cols, n, slab_ep, stream)
                                     : wgmma_product<WgShape<128>>(scratch, y + r0, slab_rows,
                                                                  cols, n, slab_ep, stream));
        } else {
            ORCD_TRY((dense_product<matmul_dense_kernel<Dense>, Dense::threads, Dense::smem,
                                    Dense::rows>(scratch, y + r0, slab_rows, cols, n, slab_ep,
                                                 stream, 1)));
        }
    }
    return ORCD_OK;
}

orcd_status dense_wgmma(bool wanted, bool *out) {
    *out = false;
    if (!wanted) return ORCD_OK;
    static std::atomic<int> known[kMaxDevices];  // 1 built, 2 not
    int answer = 0;
    ORCD_TRY(per_device(known, [](int, int *built) {
        int *flag = nullptr;
        ORCD_CUDA(cudaMalloc(&flag, sizeof(int)));
        wgmma_built_kernel<<<1, 1>>>(flag);
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess) e = cudaMemcpy(built, flag, sizeof(int), cudaMemcpyDeviceToHost);
        cudaFree(flag);
        return check(e, "wgmma probe");
    }, &answer));
    *out = answer == 1;
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
