// Prefill: Y = X W^T for n tokens on F16 tensor cores with F32 accumulation. A block owns a
// tile of 64 tokens x 64 weight rows; per step of 64 columns it converts the X tile to F16
// and dequantizes the W tile into shared memory (never a dequantized copy in device memory),
// then four warps each multiply a 32 x 32 sub-tile with wmma. Edges are zero-filled.
#include "matmul.cuh"
#include "ops.cuh"
#include "quant.cuh"

namespace orcd {

struct MatmulSmem {
    HalfTile x, w;
    FloatTile y;
};

// Consecutive threads fill consecutive runs of a tile row (coalesced X reads), in both the X
// and the W tile.
template <class F>
__device__ void load_tiles(MatmulSmem &s, const uint8_t *w, const float *x, int rows, int cols,
                           int n, int row0, int tok0, int k0) {
#pragma unroll
    for (int run = threadIdx.x; run < kTileN * kRunsPerRow; run += kMatmulThreads) {
        int r = run / kRunsPerRow, j = run % kRunsPerRow * kRun, k = k0 + j;
        float v[kRun];
        bool in_k = k < cols;
        if (in_k && tok0 + r < n) load_x_run(x + size_t(tok0 + r) * cols + k, v);
        else for (float &e : v) e = 0.0f;
        store_run(&s.x[r][j], v);
        if (in_k && row0 + r < rows) dequant16<F>(w + row_bytes<F>(cols) * (row0 + r), k, v);
        else for (float &e : v) e = 0.0f;
        store_run(&s.w[r][j], v);
    }
}

template <class F>
__global__ void __launch_bounds__(kMatmulThreads)
matmul_kernel(const uint8_t *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
              int rows, int cols, int n) {
    __shared__ __align__(32) MatmulSmem s;
    int row0 = blockIdx.x * kTileRows, tok0 = blockIdx.y * kTileN;
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    Accumulator acc[2][2];
    zero(acc);
    for (int k0 = 0; k0 < cols; k0 += kTileK) {
        load_tiles<F>(s, w, x, rows, cols, n, row0, tok0, k0);
        __syncthreads();
        mma_step(s.x, s.w, wt, wr, acc);
        __syncthreads();
    }
    store_accumulators(s.y, wt, wr, acc);
    __syncthreads();
    for (int e = threadIdx.x; e < kTileN * kTileRows; e += kMatmulThreads) {
        int t = e / kTileRows, r = e % kTileRows;
        if (tok0 + t < n && row0 + r < rows) y[size_t(tok0 + t) * rows + row0 + r] = s.y[t][r];
    }
}

orcd_status matmul(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   int n, cudaStream_t stream) {
    return with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(check_row<F>(cols, "matmul"));
        if (rows <= 0 || n < 0)
            return fail(ORCD_ERR_INVALID, "matmul: %d rows, %d tokens", rows, n);
        if (n == 0) return ORCD_OK;
        dim3 grid(unsigned((rows + kTileRows - 1) / kTileRows),
                  unsigned((n + kTileN - 1) / kTileN));
        matmul_kernel<F><<<grid, kMatmulThreads, 0, stream>>>(static_cast<const uint8_t *>(w), x,
                                                              y, rows, cols, n);
        return check(cudaGetLastError(), "matmul kernel launch");
    });
}

}  // namespace orcd
