// The prefill matmul's tile pieces (matmul.cu), shared with the grouped expert matmul (moe.cu):
// a block owns kTileN tokens x kTileRows weight rows; per step of kTileK columns the X and W
// tiles go to shared memory as F16 (W dequantized run by run), then each of four warps
// multiplies a 32 x 32 sub-tile with wmma into F32 accumulators.
#pragma once
#include <mma.h>
#include "ops.cuh"
#include "quant.cuh"

namespace orcd {

namespace wmma = nvcuda::wmma;

constexpr int kTileN = 64;     // tokens per block
constexpr int kTileRows = 64;  // weight rows per block
constexpr int kTileK = 64;     // columns per step: four runs of 16
constexpr int kLd = kTileK + 8;  // padded F16 row: fewer bank conflicts, 32-byte aligned fragments
constexpr int kLdOut = kTileRows + 4;
constexpr int kMatmulThreads = 128;
constexpr int kRunsPerRow = kTileK / kRun;
static_assert(kTileN == kTileRows && kTileN * kRunsPerRow % kMatmulThreads == 0,
              "load_tiles: every thread fills the same number of runs of each tile");

using HalfTile = __half[kTileN][kLd];
using FloatTile = float[kTileN][kLdOut];
// A warp's 32 x 32 sub-tile as 2 x 2 fragments of 16 x 16.
using Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

__device__ __forceinline__ void to_half(__half2 (&h)[kRun / 2], const float (&v)[kRun]) {
    for (int i = 0; i < kRun / 2; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
}

__device__ __forceinline__ void store_half_run(__half *dst, const __half2 (&h)[kRun / 2]) {
    uint4 *d = reinterpret_cast<uint4 *>(dst);
    d[0] = *reinterpret_cast<const uint4 *>(&h[0]);
    d[1] = *reinterpret_cast<const uint4 *>(&h[4]);
}

__device__ __forceinline__ void store_run(__half *dst, const float (&v)[kRun]) {
    __half2 h[kRun / 2];
    to_half(h, v);
    store_half_run(dst, h);
}

__device__ __forceinline__ void load_x_run(const float *x, float (&v)[kRun]) {
    const float4 *p = reinterpret_cast<const float4 *>(x);
    for (int i = 0; i < 4; ++i) {
        float4 f = __ldg(p + i);
        v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
    }
}

// The sub-tile of warp w: tokens wt.., rows wr.. of the block's tile.
__device__ __forceinline__ int warp_tokens(int warp) { return (warp / 2) * 32; }
__device__ __forceinline__ int warp_rows(int warp) { return (warp % 2) * 32; }

template <int I, int J>
__device__ __forceinline__ void zero(Accumulator (&acc)[I][J]) {
    for (auto &a : acc)
        for (auto &c : a) wmma::fill_fragment(c, 0.0f);
}

// acc += X[wt.., step] W[wr.., step]^T over one step of kTileK columns held in x and w (tiles
// of kLd-half rows): a warp's 16 I x 16 J sub-tile, chunk by chunk of 16 columns in order.
template <int I, int J>
__device__ __forceinline__ void mma_step(const __half (*x)[kLd], const __half (*w)[kLd], int wt,
                                         int wr, Accumulator (&acc)[I][J]) {
    for (int kk = 0; kk < kTileK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[I];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[J];
        for (int i = 0; i < I; ++i) wmma::load_matrix_sync(a[i], &x[wt + 16 * i][kk], kLd);
        for (int j = 0; j < J; ++j) wmma::load_matrix_sync(b[j], &w[wr + 16 * j][kk], kLd);
        for (int i = 0; i < I; ++i)
            for (int j = 0; j < J; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
}

// total = acc, or total += acc element by element: a split's sum joins the running one (the
// same F32 adds as the split-K reduction's, in the same order).
template <int I, int J>
__device__ __forceinline__ void fold(Accumulator (&total)[I][J], const Accumulator (&acc)[I][J],
                                     bool first) {
    for (int i = 0; i < I; ++i)
        for (int j = 0; j < J; ++j)
            for (int e = 0; e < acc[i][j].num_elements; ++e)
                total[i][j].x[e] = first ? acc[i][j].x[e] : total[i][j].x[e] + acc[i][j].x[e];
}

// The warp's sub-tile into y (rows of Ld floats, a token's a row).
template <int I, int J, int Ld>
__device__ __forceinline__ void store_accumulators(float (*y)[Ld], int wt, int wr,
                                                   const Accumulator (&acc)[I][J]) {
    for (int i = 0; i < I; ++i)
        for (int j = 0; j < J; ++j)
            wmma::store_matrix_sync(&y[wt + 16 * i][wr + 16 * j], acc[i][j], Ld,
                                    wmma::mem_row_major);
}

// Tiles of `tile` that cover `count`.
template <class T>
__host__ __device__ constexpr T tiles_of(T count, T tile) {
    return (count + tile - 1) / tile;
}

// Element e of the block's tile (token e / TileRows, row e % TileRows) through the epilogue
// into y; rows past the matrix are dropped.
template <int TileRows = kTileRows>
__device__ __forceinline__ void store_out(float *y, const MatmulEpilogue &ep, float sum, int e,
                                          int rows, int row0, int tok0) {
    int t = e / TileRows, r = row0 + e % TileRows;
    if (r >= rows) return;
    size_t at = size_t(tok0 + t) * (ep.ld ? ep.ld : rows) + r;
    if (ep.bias) sum += ep.bias[r];
    y[at] = ep.accumulate ? y[at] + sum : sum;
}

}  // namespace orcd
