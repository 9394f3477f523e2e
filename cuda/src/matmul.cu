// Prefill: Y = X W^T for n tokens on F16 tensor cores with F32 accumulation. A block owns a
// tile of 64 tokens x 64 weight rows; per step of 64 columns it converts the X tile to F16
// and dequantizes the W tile into shared memory (never a dequantized copy in device memory),
// then four warps each multiply a 32 x 32 sub-tile with wmma. Edges are zero-filled. The
// columns go in splits of kSplitCols summed apart (ops.cuh): a short prompt's few tiles take
// a block per split (matmul_split_kernel) instead of one block walking thousands of columns.
#include <algorithm>
#include <cooperative_groups.h>
#include "context.cuh"
#include "matmul.cuh"
#include "matmul_dense.cuh"
#include "ops.cuh"
#include "overlap.cuh"
#include "quant.cuh"

namespace orcd {

namespace cg = cooperative_groups;

// A step's X and W tiles (matmul_cluster_steps_kernel keeps its sums apart), and with the
// block's sums (matmul_kernel).
struct StepTiles {
    HalfTile x, w;
};
struct MatmulSmem : StepTiles {
    FloatTile y;
};

// A split's block has eight warps: warp w multiplies rows 16 (w % 4).. with the tile's
// fragments of 16 tokens w / 4, w / 4 + 2. With four warps (each every fragment, eight W runs
// and four X runs a thread) a block's one warp per scheduler issued an instruction every 5.3
// cycles, one after another (ncu, Qwen2.5 shape, 20 tokens: 9 us for an 8-block k matmul, 23
// for gate_up); twice the warps halve each one's chain and hide each other's latency.
constexpr int kSplitThreads = 256;

// A thread's share of one step's tiles (square, Threads threads a block), held in registers as
// F16: consecutive threads take consecutive runs of a tile row (coalesced X reads), in both
// the X and the W tile. The next step's share is read from memory while the tensor cores
// multiply this one.
template <int Tile, int Threads>
struct RunsOf {
    static constexpr int threads = Threads, count = Tile * kRunsPerRow / Threads;
    static_assert(Tile * kRunsPerRow % Threads == 0, "every thread fills as many runs");
    __half2 x[count][kRun / 2], w[count][kRun / 2];
};
using StepRuns = RunsOf<kTileN, kMatmulThreads>;

template <class F, class Runs>
__device__ __forceinline__ void load_runs(Runs &r, const uint8_t *w, const float *x, int rows,
                                          int cols, int n, int row0, int tok0, int k0) {
#pragma unroll
    for (int i = 0; i < Runs::count; ++i) {
        int run = threadIdx.x + i * Runs::threads;
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

template <class Runs>
__device__ __forceinline__ void store_runs(__half (*x)[kLd], __half (*w)[kLd], const Runs &r) {
#pragma unroll
    for (int i = 0; i < Runs::count; ++i) {
        int run = threadIdx.x + i * Runs::threads;
        int t = run / kRunsPerRow, j = run % kRunsPerRow * kRun;
        store_half_run(&x[t][j], r.x[i]);
        store_half_run(&w[t][j], r.w[i]);
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
            store_runs(s.x, s.w, runs);
            __syncthreads();
            if (k0 + kTileK < last)
                load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, k0 + kTileK);
            mma_step(s.x, s.w, wt, wr, acc);
            __syncthreads();
        }
        fold(total, acc, split == first);
    }
}

// The tile's splits' sums in `part` (split z at part + z * stride), added in split order for
// its first `valid` elements: kReduceBatch elements per thread and kReduceDepth splits at a
// time, so that a thread has their loads in flight together (one at a time, a 19-split tile
// took tens of microseconds of L2 round trips).
constexpr int kReduceBatch = 8, kReduceDepth = 4;
__device__ void add_splits(const float *part, size_t stride, int splits, int valid, float *y,
                           const MatmulEpilogue &ep, int rows, int row0, int tok0) {
    for (int e0 = threadIdx.x; e0 < valid; e0 += kReduceBatch * kSplitThreads) {
        float sum[kReduceBatch];
#pragma unroll
        for (int b = 0; b < kReduceBatch; ++b) {
            int e = e0 + b * kSplitThreads;
            sum[b] = e < valid ? __ldcg(part + e) : 0.0f;
        }
        for (int z = 1; z < splits; z += kReduceDepth) {
            float v[kReduceDepth][kReduceBatch];
#pragma unroll
            for (int d = 0; d < kReduceDepth; ++d)
#pragma unroll
                for (int b = 0; b < kReduceBatch; ++b) {
                    int e = e0 + b * kSplitThreads;
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
            int e = e0 + b * kSplitThreads;
            if (e < valid) store_out(y, ep, sum[b], e, rows, row0, tok0);
        }
    }
}

// A block per tile of kTileN tokens x kTileRows rows (blockIdx.x, .y), walking every split,
// then the epilogue (ops.cuh). Only the elements of the tile's real tokens are stored.
template <class F>
__global__ void __launch_bounds__(kMatmulThreads)
matmul_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
              int rows, int cols, int n, MatmulEpilogue ep) {
    __shared__ __align__(32) MatmulSmem s;
    allow_next_kernel();
    wait_for_previous_kernel();
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN;
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    Accumulator total[2][2];
    tile_splits<F>(s, w, x, rows, cols, n, row0, tok0, 0, col_splits(cols), total);
    store_accumulators(s.y, wt, wr, total);
    __syncthreads();
    int valid = min(kTileN, n - tok0) * kTileRows;
    for (int e = threadIdx.x; e < valid; e += kMatmulThreads)
        store_out(y, ep, s.y[e / kTileRows][e % kTileRows], e, rows, row0, tok0);
}

// A long prompt's wide tile: a block of eight warps owns 128 tokens x 128 rows, warp w the 64
// tokens 64 (w / 4).. by the 32 rows 32 (w % 4).., in two shared-memory stages of kTileK
// columns: the next step's runs are read and dequantized into registers, this step is
// multiplied, then the runs are stored into the other stage (one barrier a step). Each
// dequantized W run meets 128 tokens and each X run 128 rows, twice matmul_kernel's, and a
// warp loads each fragment for two (A) or four (B) multiplies where matmul_kernel's warps
// load it for two. The same chunks of 16 columns in the same order into the same F32 chains,
// each split's from zero and folded in order: the same bits as matmul_kernel's and the split
// kernels'. (The dequantization waits on its loads before the multiply: 40 % of the warps'
// stalls, ncu, Phi-3 shape, 4,096 tokens; an L1 prefetch before the multiply with the loads
// after it was slower, 9,930 -> 8,740 tok/s.)
constexpr int kWideTile = 128, kWideThreads = 256;
constexpr int kWideWarpTokens = 64, kWideWarpRows = 32;
constexpr int kWideRowWarps = kWideTile / kWideWarpRows;  // warps across the rows
constexpr int kWideLdOut = kWideTile + 4;
using WideRuns = RunsOf<kWideTile, kWideThreads>;
struct WideStage {
    __half x[kWideTile][kLd], w[kWideTile][kLd];
};
using WideOut = float[kWideTile][kWideLdOut];  // the sums, in the stages' place at the end
constexpr size_t kWideSmem = std::max(2 * sizeof(WideStage), sizeof(WideOut));
static_assert(kWideRowWarps * (kWideTile / kWideWarpTokens) * 32 == kWideThreads,
              "the warps' sub-tiles cover the wide tile");

template <class F>
__global__ void __launch_bounds__(kWideThreads, 1)
matmul_wide_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x,
                   float *__restrict__ y, int rows, int cols, int n, MatmulEpilogue ep) {
    extern __shared__ __align__(32) uint8_t smem[];
    WideStage *stage = reinterpret_cast<WideStage *>(smem);
    allow_next_kernel();
    wait_for_previous_kernel();
    int row0 = blockIdx.x * kWideTile, tok0 = blockIdx.y * kWideTile, warp = threadIdx.x / 32;
    int wt = warp / kWideRowWarps * kWideWarpTokens, wr = warp % kWideRowWarps * kWideWarpRows;
    bool busy = tok0 + wt < n;  // a warp whose tokens all lie past the prompt multiplies nothing
    Accumulator total[kWideWarpTokens / 16][kWideWarpRows / 16];
    Accumulator acc[kWideWarpTokens / 16][kWideWarpRows / 16];
    WideRuns runs;
    load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, 0);
    store_runs(stage[0].x, stage[0].w, runs);
    __syncthreads();
    zero(acc);
    for (int k0 = 0, step = 0; k0 < cols; k0 += kTileK, ++step) {
        bool more = k0 + kTileK < cols;
        if (more) load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, k0 + kTileK);
        if (busy) mma_step(stage[step & 1].x, stage[step & 1].w, wt, wr, acc);
        if (!more || (k0 + kTileK) % kSplitCols == 0) {  // the split's last step
            fold(total, acc, k0 < kSplitCols);
            zero(acc);
        }
        if (more) store_runs(stage[(step + 1) & 1].x, stage[(step + 1) & 1].w, runs);
        __syncthreads();  // this stage is read, the next one written
    }
    WideOut &out = *reinterpret_cast<WideOut *>(smem);
    if (busy) store_accumulators(out, wt, wr, total);
    __syncthreads();
    int valid = min(kWideTile, n - tok0) * kWideTile;
    for (int e = threadIdx.x; e < valid; e += kWideThreads)
        store_out<kWideTile>(y, ep, out[e / kWideTile][e % kWideTile], e, rows, row0, tok0);
}

// One split of one tile in (dynamic) shared memory, F16, kSplitCols columns a row: the W
// tile, then the X tile's rows of `fragments` x 16 tokens (a short prompt's few tokens take
// little), then, in a cluster, the block's splits' sums side by side (`slots` of them); on the
// global-memory path the sums take the W tile's place once the multiply has read it, and a
// flag follows the X tile. All of it dynamic: wmma's 32-byte alignment holds from the start of
// the block's memory.
constexpr int kSplitLd = kSplitCols + 8;  // padded as kLd
constexpr int kSplitRunsPerRow = kSplitCols / kRun;
using SplitRow = __half[kSplitLd];
using SumsRow = float[kLdOut];
struct SplitLayout {
    int fragments;
    bool cluster;   // the sums after the X tile; else the arrival flag there
    int slots = 1;  // a clustered block's splits
    __host__ __device__ static constexpr size_t w_bytes() {
        return size_t(kTileRows) * sizeof(SplitRow);
    }
    __host__ __device__ constexpr size_t x_bytes() const {
        return size_t(16 * fragments) * sizeof(SplitRow);
    }
    __host__ __device__ constexpr int slot_rows() const { return 16 * fragments; }
    __host__ __device__ constexpr size_t bytes() const {
        return w_bytes() + x_bytes() +
               (cluster ? size_t(slots) * slot_rows() * sizeof(SumsRow) : 16);
    }
};
static_assert(sizeof(SumsRow) * kTileN <= SplitLayout::w_bytes(), "the sums fit the W tile");

struct SplitTiles {
    SplitRow *w, *x;
};

__device__ __forceinline__ SplitTiles split_tiles(uint8_t *smem) {
    return {reinterpret_cast<SplitRow *>(smem),
            reinterpret_cast<SplitRow *>(smem + SplitLayout::w_bytes())};
}

constexpr int kSplitWarps = kSplitThreads / 32;
constexpr int kSplitWarpRows = 16;
constexpr int kSplitRowWarps = kTileRows / kSplitWarpRows;  // warps across the rows
constexpr int kSplitBlocksPerSm = 3;  // shared memory: three tiles of 64 tokens to an SM
static_assert(kSplitWarps % kSplitRowWarps == 0 &&
                  kTileRows * kSplitRunsPerRow % kSplitThreads == 0,
              "split_sum: warps of 16 rows cover the tile; every thread fills as many W runs");

// The split's tiles into shared memory as F16, every load branch-free (a run past the rows,
// tokens or columns reads a valid one and is zeroed) so that the compiler can issue them
// before it converts the first: about one round trip to memory for a short prompt's split,
// instead of one per step of kTileK.
template <class F>
__device__ __forceinline__ void load_split(const SplitTiles &s, const uint8_t *w, const float *x,
                                           int rows, int cols, int n, int row0, int tok0,
                                           int k0, int t_rows) {
    constexpr int kWRuns = kTileRows * kSplitRunsPerRow / kSplitThreads;
#pragma unroll
    for (int i = 0; i < kWRuns; ++i) {
        int run = threadIdx.x + i * kSplitThreads;
        int r = row0 + run / kSplitRunsPerRow, k = k0 + run % kSplitRunsPerRow * kRun;
        float v[kRun];
        dequant16<F>(w + row_bytes<F>(cols) * min(r, rows - 1), min(k, cols - kRun), v);
        if (r >= rows || k >= cols)
            for (float &e : v) e = 0.0f;
        store_run(&s.w[run / kSplitRunsPerRow][run % kSplitRunsPerRow * kRun], v);
    }
    for (int run = threadIdx.x; run < t_rows * kSplitRunsPerRow; run += kSplitThreads) {
        int t = tok0 + run / kSplitRunsPerRow, k = k0 + run % kSplitRunsPerRow * kRun;
        float v[kRun];
        load_x_run(x + size_t(min(t, n - 1)) * cols + min(k, cols - kRun), v);
        if (t >= n || k >= cols)
            for (float &e : v) e = 0.0f;
        store_run(&s.x[run / kSplitRunsPerRow][run % kSplitRunsPerRow * kRun], v);
    }
}

// Split z of the tile at (row0, tok0) into `sums` ([token][row], the layout's fragments x 16
// tokens): tile_splits' sum for that split, chunk by chunk of 16 columns in the same order
// (the same F32 chain per element: the same bits). Warp w takes rows 16 (w % 4).. with
// fragments w / 4, w / 4 + 2 (kSplitThreads).
template <class F>
__device__ __forceinline__ void split_sum(const SplitTiles &s, SumsRow *sums, const uint8_t *w,
                                          const float *x, int rows, int cols, int n, int row0,
                                          int tok0, int z) {
    int k0 = z * kSplitCols, fragments = (min(kTileN, n - tok0) + 15) / 16;
    load_split<F>(s, w, x, rows, cols, n, row0, tok0, k0, 16 * fragments);
    __syncthreads();
    constexpr int kTokenWarps = kSplitWarps / kSplitRowWarps, kMine = kTileN / 16 / kTokenWarps;
    int warp = threadIdx.x / 32, r0 = warp % kSplitRowWarps * kSplitWarpRows;
    int first = warp / kSplitRowWarps;  // fragments first, first + kTokenWarps, ...
    int chunks = (min(cols, k0 + kSplitCols) - k0 + kTileK - 1) / kTileK * (kTileK / 16);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kMine];
    for (auto &a : acc) wmma::fill_fragment(a, 0.0f);
    for (int c = 0; c < chunks && first < fragments; ++c) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
        wmma::load_matrix_sync(b, &s.w[r0][16 * c], kSplitLd);
#pragma unroll
        for (int j = 0; j < kMine; ++j) {
            int i = first + j * kTokenWarps;
            if (i >= fragments) continue;
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
            wmma::load_matrix_sync(a, &s.x[16 * i][16 * c], kSplitLd);
            wmma::mma_sync(acc[j], a, b, acc[j]);
        }
    }
    __syncthreads();  // the tiles are read: the sums may take their place, the next split's loads
#pragma unroll
    for (int j = 0; j < kMine; ++j) {
        int i = first + j * kTokenWarps;
        if (i < fragments)
            wmma::store_matrix_sync(&sums[16 * i][r0], acc[j], kLdOut, wmma::mem_row_major);
    }
    __syncthreads();
}

// A block per tile and split (blockIdx.x rows, .y tokens, .z split): the split's sum
// (split_sum) goes to scratch, and the tile's last block to arrive adds the splits' sums in
// split order, then the epilogue. Only the elements of the tile's real tokens are stored. The
// sm_80 path of a split launch, and sm_90's past a cluster's size.
template <class F>
__global__ void __launch_bounds__(kSplitThreads, kSplitBlocksPerSm)
matmul_split_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x,
                    float *__restrict__ y, int rows, int cols, int n, SplitLayout l,
                    MatmulScratch scratch, MatmulEpilogue ep) {
    extern __shared__ __align__(32) uint8_t smem[];
    allow_next_kernel();
    wait_for_previous_kernel();
    bool &last = *reinterpret_cast<bool *>(smem + SplitLayout::w_bytes() + l.x_bytes());
    SplitTiles s = split_tiles(smem);
    SumsRow *sums = reinterpret_cast<SumsRow *>(smem);  // in the W tile's place
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN;
    split_sum<F>(s, sums, w, x, rows, cols, n, row0, tok0, blockIdx.z);
    int valid = min(kTileN, n - tok0) * kTileRows;
    int tile = blockIdx.y * gridDim.x + blockIdx.x;
    size_t stride = size_t(gridDim.x) * gridDim.y * kTileN * kTileRows;  // from split to split
    float *part = scratch.partial + size_t(tile) * kTileN * kTileRows;
    for (int e = threadIdx.x; e < valid; e += kSplitThreads)
        part[blockIdx.z * stride + e] = sums[e / kTileRows][e % kTileRows];
    __threadfence();  // the sum is visible before the arrival is counted
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&scratch.done[tile], 1) == int(gridDim.z) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    add_splits(part, stride, gridDim.z, valid, y, ep, rows, row0, tok0);
    if (threadIdx.x == 0) scratch.done[tile] = 0;  // for the next launch
}

constexpr int kClusterMax = 8;  // blocks of a cluster (the portable most)
constexpr int kSlotsMax = 4;    // splits a clustered block takes at most
constexpr int kClusterSplitsMax = kClusterMax * kSlotsMax;  // 8,192 columns

#if __CUDA_ARCH__ >= 900
// Waits until every block of the cluster has arrived, without the release that cluster.sync()
// adds: for the kernels' last barrier, which only keeps each block's shared memory alive until
// the others have read it, their reads already consumed (summed and stored) when they arrive.
// The release's memory barrier took a tenth of a short prompt's clustered matmul (ncu stall
// samples, Qwen2.5 shape, a 30-token turn).
__device__ __forceinline__ void cluster_barrier_relaxed() {
    asm volatile("barrier.cluster.arrive.relaxed;\n\tbarrier.cluster.wait;" ::: "memory");
}

// The tile's elements, a share per block of the cluster (block b: elements b * threads + t,
// + blocks * threads, ...), each the sum over the tile's `splits` split sums in split order:
// split z is in block z % blocks' shared memory, in its slot z / blocks of `slot_rows` rows
// from `sums` (read across the cluster; the same F32 adds in the same order as add_splits: the
// same bits), through the epilogue into y. (sm_90: the only code that has clusters.)
__device__ __forceinline__ void add_cluster_sums(cg::cluster_group &cluster, SumsRow *sums,
                                                 int slot_rows, int splits, float *y,
                                                 const MatmulEpilogue &ep, int rows, int n,
                                                 int row0, int tok0) {
    int blocks = int(gridDim.z), threads = int(blockDim.x);
    int valid = min(kTileN, n - tok0) * kTileRows;
    for (int e = int(blockIdx.z) * threads + threadIdx.x; e < valid; e += blocks * threads) {
        int t = e / kTileRows, r = e % kTileRows;
        float sum = 0.0f;
        for (int slot = 0; slot < kSlotsMax && slot * blocks < splits; ++slot) {
            float v[kClusterMax];  // a slot's sums in flight together (all 32: registers spilled)
            const SumsRow *at = sums + slot * slot_rows;
#pragma unroll
            for (int b = 0; b < kClusterMax; ++b)
                if (b < blocks && slot * blocks + b < splits)
                    v[b] = cluster.map_shared_rank(at, b)[t][r];
#pragma unroll
            for (int b = 0; b < kClusterMax; ++b) {
                int z = slot * blocks + b;
                if (b < blocks && z < splits) sum = z == 0 ? v[b] : sum + v[b];
            }
        }
        store_out(y, ep, sum, e, rows, row0, tok0);
    }
}
#endif

// A cluster per tile (sm_90) of up to kClusterMax blocks, block b taking splits b, b + blocks,
// ... (a split a block where there are few): each split's sum (split_sum) stays in a slot of
// its block's shared memory, then every block adds a share of the tile's elements over all
// the splits' sums (add_cluster_sums): no trip through global memory, no atomic. (Qwen2.5's
// ffn_down, 19 splits, for a 31-token turn, ncu: 18.9 us through global memory, the last block
// of each tile adding the others' sums while most SMs idled; 16.6 us in clusters of 8.)
template <class F>
__global__ void __launch_bounds__(kSplitThreads, kSplitBlocksPerSm)
matmul_cluster_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x,
                      float *__restrict__ y, int rows, int cols, int n, SplitLayout l,
                      MatmulEpilogue ep) {
#if __CUDA_ARCH__ >= 900
    extern __shared__ __align__(32) uint8_t smem[];
    allow_next_kernel();
    wait_for_previous_kernel();
    SplitTiles s = split_tiles(smem);
    SumsRow *sums = reinterpret_cast<SumsRow *>(smem + SplitLayout::w_bytes() + l.x_bytes());
    cg::cluster_group cluster = cg::this_cluster();
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN, splits = col_splits(cols);
    for (int z = int(blockIdx.z), slot = 0; z < splits; z += int(gridDim.z), ++slot)
        split_sum<F>(s, sums + slot * l.slot_rows(), w, x, rows, cols, n, row0, tok0, z);
    cluster.sync();  // every split's sums are in place
    add_cluster_sums(cluster, sums, l.slot_rows(), splits, y, ep, rows, n, row0, tok0);
    cluster_barrier_relaxed();  // the sums stay until every block has read them
#endif
}

// The same with a block of four warps that walks each of its splits in steps of kTileK columns
// (split_in_steps: the next step's runs in flight while the tensor cores multiply this one, the
// same chunk order as split_sum's, the same bits), its splits' sums in slots of dynamic shared
// memory after the static tiles: 18 KB and one 17 KB slot, five blocks an SM against
// matmul_cluster_kernel's three, for a launch whose blocks would take more than a wave
// (MatmulScratch::steps). Past kClusterMax splits a block takes several (a 512-token prompt's
// ffn_down, 19 splits: 8 blocks a tile of three slots each, where one block walking all 4,864
// columns left 20 of the 132 SMs idle and the rest a single block each).
constexpr int kStepBlocksPerSm = 5;  // registers: 660 blocks in a wave of the H200's 132 SMs

// Split z of the tile at (row0, tok0) into acc (warp w's 32 x 32 sub-tile), from zero, in steps
// of kTileK columns: tile_splits' sum of that split, without its running total (registers). A
// warp whose tokens all lie past the prompt's multiplies nothing (its sums are never stored).
template <class F>
__device__ __forceinline__ void split_in_steps(StepTiles &s, const uint8_t *w, const float *x,
                                               int rows, int cols, int n, int row0, int tok0,
                                               int z, Accumulator (&acc)[2][2]) {
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    bool busy = tok0 + wt < n;
    int k0 = z * kSplitCols, k_end = min(cols, k0 + kSplitCols);
    StepRuns runs;
    load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, k0);
    zero(acc);
    for (; k0 < k_end; k0 += kTileK) {
        store_runs(s.x, s.w, runs);
        __syncthreads();
        if (k0 + kTileK < k_end) load_runs<F>(runs, w, x, rows, cols, n, row0, tok0, k0 + kTileK);
        if (busy) mma_step(s.x, s.w, wt, wr, acc);
        __syncthreads();
    }
}
template <class F>
__global__ void __launch_bounds__(kMatmulThreads, kStepBlocksPerSm)
matmul_cluster_steps_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x,
                            float *__restrict__ y, int rows, int cols, int n, MatmulEpilogue ep) {
#if __CUDA_ARCH__ >= 900
    __shared__ __align__(32) StepTiles s;
    extern __shared__ __align__(32) uint8_t smem[];
    FloatTile *sums = reinterpret_cast<FloatTile *>(smem);  // a slot for each of its splits
    allow_next_kernel();
    wait_for_previous_kernel();
    cg::cluster_group cluster = cg::this_cluster();
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN, splits = col_splits(cols);
    int warp = threadIdx.x / 32;
    for (int z = int(blockIdx.z), slot = 0; z < splits; z += int(gridDim.z), ++slot) {
        Accumulator sum[2][2];
        split_in_steps<F>(s, w, x, rows, cols, n, row0, tok0, z, sum);
        store_accumulators(sums[slot], warp_tokens(warp), warp_rows(warp), sum);
    }
    cluster.sync();  // every split's sums are in place
    add_cluster_sums(cluster, sums[0], kTileN, splits, y, ep, rows, n, row0, tok0);
    cluster_barrier_relaxed();  // the sums stay until every block has read them
#endif
}

// Whether a split launch's sums meet in a cluster: sm_90 and later, at most kClusterSplitsMax
// splits, where the scratch allows it.
static orcd_status clustered(const MatmulScratch &scratch, int splits, bool *out) {
    *out = false;
    if (!scratch.clusters || splits > kClusterSplitsMax) return ORCD_OK;
    int major = 0;
    ORCD_TRY(compute_major(&major));
    *out = major >= 9;
    return ORCD_OK;
}


// How a clustered launch covers a tile's splits: `blocks` blocks a tile (its cluster), block b
// taking splits b, b + blocks, ..., whole (matmul_cluster_kernel) or, where *stepped, each
// walked in steps of kTileK columns (matmul_cluster_steps_kernel): in steps where the scratch
// says or, unset, where a block a split would take more than one wave of the GPU. Stepped, up to
// kClusterMax splits take a block each and more take kClusterMax blocks; whole, past
// kClusterMax splits or past a wave, as few blocks a tile as fill one wave, at most kSlotsMax
// splits each.
static orcd_status cluster_shape(const MatmulScratch &scratch, int tiles, int splits, int *blocks,
                                 bool *stepped) {
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    int wave = kSplitBlocksPerSm * sms;
    bool over = long(tiles) * splits > wave;
    *stepped = scratch.steps == 1 || (scratch.steps == -1 && over);
    *blocks = std::min(splits, kClusterMax);
    if (!*stepped && (splits > kClusterMax || over))
        *blocks = std::max(tiles_of(splits, kSlotsMax),
                           std::min(*blocks, std::max(1, wave / tiles)));
    return ORCD_OK;
}

// A kernel may take `bytes` of shared memory, over the 48 KiB a block gets without asking: the
// split kernel its largest layout's (a whole tile of 64 tokens, 68 KB) and the wide kernel its
// two stages (72 KB), which every sm_80+ GPU has; the sm_90 cluster kernels their four slots
// of sums beside the tiles (137 KB whole, 88 KB stepped). Asked once per kernel, each launch
// passing its own size.
template <class... Params>
static cudaError_t allow_shared_memory(void (*kernel)(Params...), size_t bytes) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
}

// Whether a launch of `tiles` tiles gives each split a block of its own: where the tiles alone
// would leave most of the GPU idle, and the splits' sums meet in a cluster (`in_cluster`) or the
// scratch holds them all.
static bool split_blocks(const MatmulScratch &scratch, int tiles, int splits, bool in_cluster) {
    if (splits < 2 || !scratch.partial || scratch.split == 0) return false;
    bool fits = in_cluster || (size_t(splits) * tiles * kTileN * kTileRows <= scratch.floats &&
                               tiles <= scratch.counters);
    if (scratch.split == 1 || !fits) return fits;
    int sms = 0;
    return multiprocessors(&sms) == ORCD_OK && tiles < 2 * sms;
}

static int row_tiles(int rows) { return tiles_of(rows, kTileRows); }

static int token_tiles(int tokens) { return tiles_of(tokens, kTileN); }

// Whether a launch that does not split its columns takes wide tiles (matmul_wide_kernel):
// always or never as the scratch says, else where they alone give every SM a block.
static orcd_status in_wide_tiles(const MatmulScratch &scratch, int rows, int n, bool *out) {
    *out = scratch.wide == 1;
    if (scratch.wide != -1) return ORCD_OK;
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    *out = long(tiles_of(rows, kWideTile)) * tiles_of(n, kWideTile) >= sms;
    return ORCD_OK;
}

void matmul_dense_halves(const int (*shapes)[2], int count, int tokens, size_t *w, size_t *x) {
    *w = *x = 0;
    if (tokens < kWideTile) return;
    for (int i = 0; i < count; ++i) {
        int rows = shapes[i][0], cols = shapes[i][1];
        int slab = std::max(dense_slab_rows(kDenseSlabHalves, rows, cols),
                            std::min(rows, kDenseSlabRows));  // a tile at least
        *w = std::max(*w, size_t(slab) * dense_ld(cols));
        *x = std::max(*x, size_t(tokens) * dense_ld(cols));
    }
}

// Whether a launch that does not split its columns takes the dense F16 path (matmul_dense.cu):
// unless the scratch says never, wherever it holds the operands (at least a slab of rows of W
// and every token of X).
static bool in_dense_tiles(const MatmulScratch &scratch, int rows, int cols, int n) {
    return scratch.dense != 0 && dense_slab_rows(scratch.dense_w_halves, rows, cols) > 0 &&
           scratch.dense_x_halves >= size_t(n) * dense_ld(cols);
}

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
        const uint8_t *wb = static_cast<const uint8_t *>(w);
        dim3 grid(unsigned(row_tiles(rows)), unsigned(token_tiles(n)));
        bool overlap = scratch.overlap;
        SplitLayout l{(std::min(n, kTileN) + 15) / 16, false};
        ORCD_TRY(clustered(scratch, splits, &l.cluster));
        // On wgmma a tile of tokens or more shares out its splits itself (matmul_dense.cu),
        // unless forced onto the split kernels; elsewhere the dense product takes the unsplit.
        bool dense = in_dense_tiles(scratch, rows, cols, n);
        if (dense && scratch.wgmma && n >= kDenseTokens && scratch.split != 1)
            return matmul_dense<F>(wb, x, y, rows, cols, n, scratch, stream, e);
        if (!split_blocks(scratch, tiles, splits, l.cluster)) {
            if (dense) return matmul_dense<F>(wb, x, y, rows, cols, n, scratch, stream, e);
            bool wide = false;
            ORCD_TRY(in_wide_tiles(scratch, rows, n, &wide));
            if (!wide)
                return check(launch(matmul_kernel<F>, grid, kMatmulThreads, 0, stream, overlap,
                                    wb, x, y, rows, cols, n, e),
                             "matmul kernel launch");
            static const cudaError_t allowed = allow_shared_memory(matmul_wide_kernel<F>,
                                                                   kWideSmem);
            ORCD_CUDA(allowed);
            dim3 wide_grid(unsigned(tiles_of(rows, kWideTile)), unsigned(tiles_of(n, kWideTile)));
            return check(launch(matmul_wide_kernel<F>, wide_grid, kWideThreads, kWideSmem, stream,
                                overlap, wb, x, y, rows, cols, n, e),
                         "matmul wide kernel launch");
        }
        // a split a block: the tiles' fragments of 16 tokens size the shared memory
        grid.z = unsigned(splits);
        if (l.cluster) {
            int blocks = 0;
            bool stepped = false;
            ORCD_TRY(cluster_shape(scratch, tiles, splits, &blocks, &stepped));
            grid.z = unsigned(blocks);
            l.slots = tiles_of(splits, blocks);
            cudaLaunchAttribute attrs[2] = {{}, overlap_attribute()};
            attrs[0].id = cudaLaunchAttributeClusterDimension;
            attrs[0].val.clusterDim = {1, 1, grid.z};
            if (stepped) {
                static const cudaError_t allowed = allow_shared_memory(
                    matmul_cluster_steps_kernel<F>, kSlotsMax * sizeof(FloatTile));
                ORCD_CUDA(allowed);
                return check(launch_with(matmul_cluster_steps_kernel<F>, grid, kMatmulThreads,
                                         l.slots * sizeof(FloatTile), stream, attrs,
                                         overlap ? 2 : 1, wb, x, y, rows, cols, n, e),
                             "matmul cluster steps kernel launch");
            }
            static const cudaError_t allowed = allow_shared_memory(
                matmul_cluster_kernel<F>, SplitLayout{kTileN / 16, true, kSlotsMax}.bytes());
            ORCD_CUDA(allowed);
            return check(launch_with(matmul_cluster_kernel<F>, grid, kSplitThreads, l.bytes(),
                                     stream, attrs, overlap ? 2 : 1, wb, x, y, rows, cols, n, l,
                                     e),
                         "matmul cluster kernel launch");
        }
        static const cudaError_t allowed = allow_shared_memory(
            matmul_split_kernel<F>, SplitLayout{kTileN / 16, false}.bytes());
        ORCD_CUDA(allowed);
        return check(launch(matmul_split_kernel<F>, grid, kSplitThreads, l.bytes(), stream, overlap,
                            wb, x, y, rows, cols, n, l, scratch, e),
                     "matmul split kernel launch");
    });
}

}  // namespace orcd
