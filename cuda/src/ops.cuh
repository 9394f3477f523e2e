// The quantized-weight kernels as the forward pass calls them. Every call is asynchronous on
// `stream` and capture-safe for CUDA graphs: no allocation, no synchronisation, and its host
// checks look only at shapes and types, never at data.
// Weights are GGUF tensors as stored: row-major, a row (GGUF ne0) of `cols` values; `cols`
// must be a whole number of blocks and a multiple of 16. Pointers are 16-byte aligned.
// Results are bit-identical from run to run (fixed reduction order; an atomic counter at
// most decides which block adds the partial sums, never their order).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "options.cuh"
#include "orcd_cuda.h"

namespace orcd {

// y[rows] = W[rows, cols] x[cols]   (decode). MatvecPath::q8_1: quantized weights meet x
// quantized to Q8_1 in shared memory (int8 per value, a scale per 32: each x rounds by at most
// 1/254 of its block's max|x|); float weights, and every format on MatvecPath::f32, meet x in
// F32 (options.cuh's ORCD_MATVEC).
orcd_status matvec(MatvecPath path, int ggml_type, const void *w, const float *x, float *y,
                   int rows, int cols, cudaStream_t stream);

// Y[n, rows] = X[n, cols] W^T   (prefill): F16 tensor cores, F32 accumulation; X and the
// dequantized W are rounded to F16 (relative 2^-11; |values| must stay below 65504).
// The columns are summed in splits of kSplitCols, each from zero, and the splits' sums added
// in order: a row's result is the same bits whatever n and whichever blocks computed it (the
// prompt cache recomputes a prompt's last rows alone, SPEC §8). Where the tiles alone would
// leave the GPU idle (a short prompt), each split takes a block of its own (past 8 splits a
// block takes several), and a tile's sums meet in a thread-block cluster's shared memory (sm_90,
// up to 32 splits) or the tile's last block adds them up in `scratch` (null: one block walks
// every split). A long prompt's blocks each take 128 tokens x 128 rows where those tiles fill
// the GPU: from W dequantized to F16 in scratch where it is given (MatmulScratch::dense), else
// dequantizing it tile by tile (MatmulScratch::wide).
constexpr int kSplitCols = 256;
__host__ __device__ constexpr int col_splits(int cols) {
    return (cols + kSplitCols - 1) / kSplitCols;
}
struct MatmulScratch {
    float *partial = nullptr;  // the splits' sums, a 64 x 64 tile each
    size_t floats = 0;
    int *done = nullptr;       // arrivals per tile, zero before and after a launch
    int counters = 0;
    int split = -1;            // -1: split where the GPU would idle, 0: never, 1: always
    int steps = -1;            // clustered: -1 a block walks its splits in steps of kTileK
                               // columns where a block a split would take more than one wave, 0
                               // never (each split's tiles loaded at once), 1 always
    int wide = -1;             // not split: -1 tiles of 128 x 128 (eight warps) where they alone
                               // give every SM a block, else of 64 x 64; 0 never, 1 always
    bool clusters = true;      // sm_90: a split launch's sums meet in a thread-block cluster's
                               // shared memory; false: in `partial` (the sm_80 way)
    bool overlap = false;      // launched to overlap the kernel before it (overlap.cuh), and
                               // so are the other kernels of its pass (pass.cuh's overlaps)
    int dense = -1;            // not split: the dense F16 product (matmul_dense.cu) wherever
                               // its operands fit below (-1, 1), 0 never
    __half *dense_w = nullptr;  // a slab of W dequantized to F16 (whole tiles of 128 rows)
    size_t dense_w_halves = 0;
    __half *dense_x = nullptr;  // X rounded to F16
    size_t dense_x_halves = 0;
    bool wgmma = false;         // the dense product on wgmma (dense_wgmma)
};
// Floats and counters of a MatmulScratch that lets matmul split every projection of these
// (rows, cols) shapes for up to `tokens` tokens (whole tiles of 64: 1 sizes it for one tile).
size_t matmul_scratch_floats(const int (*shapes)[2], int count, int tokens);
int matmul_scratch_counters(const int (*shapes)[2], int count, int tokens);
// Halves of the dense path's F16 operands for these shapes and up to `tokens` tokens: a slab of
// W (a whole matrix where it takes at most kDenseSlabHalves, else the most whole tiles of rows
// within it) and X; zero below a tile of tokens, which never takes the dense path.
// 128 MB: Phi-3-mini's gate and up (16,384 x 3,072) in one launch (in two slabs, their 340
// and 172 tiles took five waves of 132 where 512 take four).
constexpr size_t kDenseSlabHalves = size_t(64) << 20;
void matmul_dense_halves(const int (*shapes)[2], int count, int tokens, size_t *w, size_t *x);
// Whether the dense product runs on wgmma: where wanted (ORCD_WGMMA) and the current device runs
// this build's wgmma (the library built for sm_90a and run on such a GPU; asked of the device
// once per device, so first outside a stream capture: at load).
orcd_status dense_wgmma(bool wanted, bool *out);
// What matmul does with a row's sum before storing it: + bias[row] where bias is given, then
// added to what y holds where accumulate (the residual connection: y += X W^T).
struct MatmulEpilogue {
    const float *bias = nullptr;
    bool accumulate = false;
    int ld = 0;  // floats from a token's row of y to the next (0: rows)
};
orcd_status matmul(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   int n, const MatmulScratch &scratch, cudaStream_t stream,
                   MatmulEpilogue e = {});

// out[n, cols] = dequant(W[ids[i]]); ids must be valid rows (the caller checks them).
orcd_status embed_rows(int ggml_type, const void *w, const int32_t *ids, float *out, int cols,
                       int n, cudaStream_t stream);

}  // namespace orcd
