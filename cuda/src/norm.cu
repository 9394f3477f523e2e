// RMSNorm: one block per row.
#include "common.cuh"
#include "norm.cuh"
#include "overlap.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kNormThreads = 256;

__global__ void rmsnorm_kernel(const float *__restrict__ x, const float *__restrict__ w,
                               float *__restrict__ out, int cols, float eps) {
    allow_next_kernel();
    wait_for_previous_kernel();
    const float *row = x + size_t(blockIdx.x) * cols;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) ss += row[c] * row[c];
    float inv_rms = 1.0f / sqrtf(block_sum(ss) / cols + eps);
    float *o = out + size_t(blockIdx.x) * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) o[c] = row[c] * inv_rms * w[c];
}

orcd_status rmsnorm(const float *x, const float *w, float *out, int n, int cols, float eps,
                    cudaStream_t stream, bool overlap) {
    return check(launch(rmsnorm_kernel, n, kNormThreads, 0, stream, overlap, x, w, out, cols, eps),
                 "rmsnorm kernel launch");
}

}  // namespace orcd
