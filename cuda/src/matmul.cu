// Prefill: Y = X W^T for n tokens on F16 tensor cores with F32 accumulation. A block owns a
// tile of 64 tokens x 64 weight rows; per step of 64 columns it converts the X tile to F16
// and dequantizes the W tile into shared memory (never a dequantized copy in device memory),
// then four warps each multiply a 32 x 32 sub-tile with wmma. Edges are zero-filled. The
// columns go in splits of kSplitCols summed apart (ops.cuh): a short prompt's few tiles take
// a block per split instead of one block walking thousands of columns.
#include <algorithm>
#include "context.cuh"
#include "matmul.cuh"
#include "ops.cuh"
#include "quant.cuh"

namespace orcd {

struct MatmulSmem {
    HalfTile x, w;
    FloatTile y;
};

// A thread's share of one step's tiles, held in registers as F16: consecutive threads take
// consecutive runs of a tile row (coalesced X reads), in both the X and the W tile. The next
// step's share is read from memory while the tensor cores multiply this one.
constexpr int kRunsPerThread = kTileN * kRunsPerRow / kMatmulThreads;
struct StepRuns {
    __half2 x[kRunsPerThread][kRun / 2], w[kRunsPerThread][kRun / 2];
};

template <class F>
__device__ __forceinline__ void load_runs(StepRuns &r, const uint8_t *w, const float *x,
                                          int rows, int cols, int n, int row0, int tok0, int k0) {
#pragma unroll
    for (int i = 0; i < kRunsPerThread; ++i) {
        int run = threadIdx.x + i * kMatmulThreads;
        int t = run / kRunsPerRow, k = k0 + run % kRunsPerRow * kRun;
        float v[kRun];
        bool in_k = k < cols;
        if (in_k && tok0 + t < n) load_x_run(x + size_t(tok0 + t) * cols + k, v);
        else for (float &e : v) e = 0.0f;
        to_half(r.x[i], v);
        if (in_k && row0 + t < rows) dequant16<F>(w + row_bytes<F>(cols) * (row0 + t), k, v);
        else for (float &e : v) e = 0.0f;
        to_half(r.w[i], v);
    }
}

__device__ __forceinline__ void store_runs(MatmulSmem &s, const StepRuns &r) {
#pragma unroll
    for (int i = 0; i < kRunsPerThread; ++i) {
        int run = threadIdx.x + i * kMatmulThreads;
        int t = run / kRunsPerRow, j = run % kRunsPerRow * kRun;
        store_half_run(&s.x[t][j], r.x[i]);
        store_half_run(&s.w[t][j], r.w[i]);
    }
}

// Splits [first, end) of the block's tile summed into total (splits of kSplitCols columns,
// each from zero, folded in order).
template <class F>
__device__ void tile_splits(MatmulSmem &s, const uint8_t *w, const float *x, int rows, int cols,
                            int n, int row0, int tok0, int first, int end,
                            Accumulator (&total)[2][2]) {
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    StepRuns runs;
    load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, first * kSplitCols);
    for (int split = first; split < end; ++split) {
        Accumulator acc[2][2];
        zero(acc);
        int k_end = min(cols, (split + 1) * kSplitCols), last = min(cols, end * kSplitCols);
        for (int k0 = split * kSplitCols; k0 < k_end; k0 += kTileK) {
            store_runs(s, runs);
            __syncthreads();
            if (k0 + kTileK < last)
                load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, k0 + kTileK);
            mma_step(s.x, s.w, wt, wr, acc);
            __syncthreads();
        }
        fold(total, acc, split == first);
    }
}

// Element e of the block's tile (token e / kTileRows, row e % kTileRows) through the epilogue
// into y; rows past the matrix are dropped.
__device__ __forceinline__ void store_out(float *y, const MatmulEpilogue &ep, float sum, int e,
                                          int rows, int row0, int tok0) {
    int t = e / kTileRows, r = row0 + e % kTileRows;
    if (r >= rows) return;
    size_t at = size_t(tok0 + t) * rows + r;
    if (ep.bias) sum += ep.bias[r];
    y[at] = ep.accumulate ? y[at] + sum : sum;
}

// The tile's splits' sums in `part` (split z at part + z * stride), added in split order for
// its first `valid` elements: kReduceBatch elements per thread and kReduceDepth splits at a
// time, so that a thread has their loads in flight together (one at a time, a 19-split tile
// took tens of microseconds of L2 round trips).
constexpr int kReduceBatch = 8, kReduceDepth = 4;
__device__ void add_splits(const float *part, size_t stride, int splits, int valid, float *y,
                           const MatmulEpilogue &ep, int rows, int row0, int tok0) {
    for (int e0 = threadIdx.x; e0 < valid; e0 += kReduceBatch * kMatmulThreads) {
        float sum[kReduceBatch];
#pragma unroll
        for (int b = 0; b < kReduceBatch; ++b) {
            int e = e0 + b * kMatmulThreads;
            sum[b] = e < valid ? __ldcg(part + e) : 0.0f;
        }
        for (int z = 1; z < splits; z += kReduceDepth) {
            float v[kReduceDepth][kReduceBatch];
#pragma unroll
            for (int d = 0; d < kReduceDepth; ++d)
#pragma unroll
                for (int b = 0; b < kReduceBatch; ++b) {
                    int e = e0 + b * kMatmulThreads;
                    bool in = z + d < splits && e < valid;
                    v[d][b] = in ? __ldcg(part + size_t(z + d) * stride + e) : 0.0f;
                }
#pragma unroll
            for (int d = 0; d < kReduceDepth; ++d)
#pragma unroll
                for (int b = 0; b < kReduceBatch; ++b)
                    if (z + d < splits) sum[b] += v[d][b];  // no +0.0: a -0.0 sum stays -0.0
        }
#pragma unroll
        for (int b = 0; b < kReduceBatch; ++b) {
            int e = e0 + b * kMatmulThreads;
            if (e < valid) store_out(y, ep, sum[b], e, rows, row0, tok0);
        }
    }
}

// A block per tile of kTileN tokens x kTileRows rows (blockIdx.x, .y), walking every split;
// or, with gridDim.z > 1, per tile and split (blockIdx.z): its sum goes to scratch, and the
// tile's last block to arrive adds the splits' sums in order. Then the epilogue (ops.cuh).
// Only the elements of the tile's real tokens are stored.
template <class F>
__global__ void __launch_bounds__(kMatmulThreads)
matmul_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
              int rows, int cols, int n, MatmulScratch scratch, MatmulEpilogue ep) {
    __shared__ __align__(32) MatmulSmem s;
    __shared__ bool last;
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN;
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    bool split = gridDim.z > 1;
    Accumulator total[2][2];
    tile_splits<F>(s, w, x, rows, cols, n, row0, tok0, split ? blockIdx.z : 0,
                   split ? blockIdx.z + 1 : col_splits(cols), total);
    store_accumulators(s.y, wt, wr, total);
    __syncthreads();
    int valid = min(kTileN, n - tok0) * kTileRows;
    if (!split) {
        for (int e = threadIdx.x; e < valid; e += kMatmulThreads)
            store_out(y, ep, s.y[e / kTileRows][e % kTileRows], e, rows, row0, tok0);
        return;
    }
    int tile = blockIdx.y * gridDim.x + blockIdx.x;
    size_t stride = size_t(gridDim.x) * gridDim.y * kTileN * kTileRows;  // from split to split
    float *part = scratch.partial + size_t(tile) * kTileN * kTileRows;
    for (int e = threadIdx.x; e < valid; e += kMatmulThreads)
        part[blockIdx.z * stride + e] = s.y[e / kTileRows][e % kTileRows];
    __threadfence();  // the sum is visible before the arrival is counted
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&scratch.done[tile], 1) == int(gridDim.z) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    add_splits(part, stride, gridDim.z, valid, y, ep, rows, row0, tok0);
    if (threadIdx.x == 0) scratch.done[tile] = 0;  // for the next launch
}

// Whether a launch of `tiles` tiles gives each split a block of its own: where the tiles alone
// would leave most of the GPU idle, and the scratch holds every split's sums.
static bool split_blocks(const MatmulScratch &scratch, int tiles, int splits) {
    if (splits < 2 || !scratch.partial || scratch.split == 0) return false;
    bool fits = size_t(splits) * tiles * kTileN * kTileRows <= scratch.floats &&
                tiles <= scratch.counters;
    if (scratch.split == 1 || !fits) return fits;
    int sms = 0;
    return multiprocessors(&sms) == ORCD_OK && tiles < 2 * sms;
}

static int row_tiles(int rows) { return (rows + kTileRows - 1) / kTileRows; }

static int token_tiles(int tokens) { return (tokens + kTileN - 1) / kTileN; }

size_t matmul_scratch_floats(const int (*shapes)[2], int count, int tokens) {
    size_t most = 0;
    for (int i = 0; i < count; ++i)
        most = std::max(most, size_t(col_splits(shapes[i][1])) * row_tiles(shapes[i][0]));
    return most * token_tiles(tokens) * kTileN * kTileRows;
}

int matmul_scratch_counters(const int (*shapes)[2], int count, int tokens) {
    int most = 0;
    for (int i = 0; i < count; ++i) most = std::max(most, row_tiles(shapes[i][0]));
    return most * token_tiles(tokens);
}

orcd_status matmul(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   int n, const MatmulScratch &scratch, cudaStream_t stream,
                   MatmulEpilogue e) {
    return with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(check_row<F>(cols, "matmul"));
        if (rows <= 0 || n < 0)
            return fail(ORCD_ERR_INVALID, "matmul: %d rows, %d tokens", rows, n);
        if (n == 0) return ORCD_OK;
        int tiles = row_tiles(rows) * token_tiles(n), splits = col_splits(cols);
        bool split = split_blocks(scratch, tiles, splits);
        dim3 grid(unsigned(row_tiles(rows)), unsigned(token_tiles(n)),
                  split ? unsigned(splits) : 1u);
        matmul_kernel<F><<<grid, kMatmulThreads, 0, stream>>>(static_cast<const uint8_t *>(w), x,
                                                              y, rows, cols, n, scratch, e);
        return check(cudaGetLastError(), "matmul kernel launch");
    });
}

}  // namespace orcd
