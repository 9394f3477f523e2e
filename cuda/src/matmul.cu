// Prefill: Y = X W^T for n tokens on F16 tensor cores with F32 accumulation. A block owns a
// tile of 64 tokens x 64 weight rows; per step of 64 columns it converts the X tile to F16
// and dequantizes the W tile into shared memory (never a dequantized copy in device memory),
// then four warps each multiply a 32 x 32 sub-tile with wmma. Edges are zero-filled.
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

struct MatmulSmem {
    __half x[kTileN][kLd];
    __half w[kTileRows][kLd];
    float y[kTileN][kLdOut];
};

__device__ __forceinline__ void store_run(__half *dst, const float (&v)[kRun]) {
    __half2 h[kRun / 2];
    for (int i = 0; i < kRun / 2; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    uint4 *d = reinterpret_cast<uint4 *>(dst);
    d[0] = *reinterpret_cast<const uint4 *>(&h[0]);
    d[1] = *reinterpret_cast<const uint4 *>(&h[4]);
}

__device__ __forceinline__ void load_x_run(const float *x, float (&v)[kRun]) {
    const float4 *p = reinterpret_cast<const float4 *>(x);
    for (int i = 0; i < 4; ++i) {
        float4 f = __ldg(p + i);
        v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
    }
}

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
    int warp = threadIdx.x / 32, wt = (warp / 2) * 32, wr = (warp % 2) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (auto &a : acc)
        for (auto &c : a) wmma::fill_fragment(c, 0.0f);
    for (int k0 = 0; k0 < cols; k0 += kTileK) {
        load_tiles<F>(s, w, x, rows, cols, n, row0, tok0, k0);
        __syncthreads();
        for (int kk = 0; kk < kTileK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &s.x[wt + 16 * i][kk], kLd);
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &s.w[wr + 16 * j][kk], kLd);
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&s.y[wt + 16 * i][wr + 16 * j], acc[i][j], kLdOut,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < kTileN * kTileRows; e += kMatmulThreads) {
        int t = e / kTileRows, r = e % kTileRows;
        if (tok0 + t < n && row0 + r < rows) y[size_t(tok0 + t) * rows + row0 + r] = s.y[t][r];
    }
}

size_t matmul_scratch_bytes(int, int) { return 0; }

orcd_status matmul(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   int n, void *, cudaStream_t stream) {
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
