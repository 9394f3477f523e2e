// The dense F16 path of a long prompt's matmul (matmul_dense.cu), which matmul() takes where
// its scratch holds the F16 operands (MatmulScratch::dense).
#pragma once
#include "matmul.cuh"

namespace orcd {

// W is dequantized in slabs of whole kDenseSlabRows-row tiles where the scratch does not hold it
// whole (MatmulScratch::dense_w_halves).
constexpr int kDenseSlabRows = 128;

// Tokens a block of the dense product takes. On wgmma every matmul of this many tokens or more
// comes here (matmul.cu); one of fewer only where it is not split (its block's second group
// then multiplies zeros).
constexpr int kDenseTokens = 128;

// Halves a row of the F16 operands: cols rounded up to the quantized kernels' step of columns.
__host__ __device__ constexpr int dense_ld(int cols) {
    return (cols + kTileK - 1) / kTileK * kTileK;
}

// Rows of W a slab takes in `halves` of scratch: all of them where they fit, else whole tiles of
// kDenseSlabRows (0: not even one).
inline int dense_slab_rows(size_t halves, int rows, int cols) {
    size_t ld = size_t(dense_ld(cols));
    return halves >= size_t(rows) * ld ? rows : int(halves / ld / kDenseSlabRows * kDenseSlabRows);
}

// Y[n, rows] = X W^T (ops.cuh's matmul) through the scratch's F16 operands: the same bits as
// the other paths.
template <class F>
orcd_status matmul_dense(const uint8_t *w, const float *x, float *y, int rows, int cols, int n,
                         const MatmulScratch &scratch, cudaStream_t stream, MatmulEpilogue ep);

}  // namespace orcd
