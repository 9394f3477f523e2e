// Embedding lookup: one block per token copies its dequantized row, a run of 16 per thread.
#include "ops.cuh"
#include "quant.cuh"

namespace orcd {

constexpr int kEmbedThreads = 128;

template <class F>
__global__ void __launch_bounds__(kEmbedThreads)
embed_kernel(const uint8_t *__restrict__ w, const int32_t *__restrict__ ids,
             float *__restrict__ out, int cols) {
    const uint8_t *row = w + row_bytes<F>(cols) * size_t(__ldg(ids + blockIdx.x));
    float4 *dst = reinterpret_cast<float4 *>(out + size_t(blockIdx.x) * cols);
    for (int i = threadIdx.x * kRun; i < cols; i += kEmbedThreads * kRun) {
        float v[kRun];
        dequant16<F>(row, i, v);
        for (int q = 0; q < kRun / 4; ++q)
            dst[i / 4 + q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    }
}

orcd_status embed_rows(int ggml_type, const void *w, const int32_t *ids, float *out, int cols,
                       int n, cudaStream_t stream) {
    return with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(check_row<F>(cols, "embed_rows"));
        if (n < 0) return fail(ORCD_ERR_INVALID, "embed_rows: %d tokens", n);
        if (n == 0) return ORCD_OK;
        embed_kernel<F><<<unsigned(n), kEmbedThreads, 0, stream>>>(static_cast<const uint8_t *>(w),
                                                                   ids, out, cols);
        return check(cudaGetLastError(), "embed_rows kernel launch");
    });
}

}  // namespace orcd
