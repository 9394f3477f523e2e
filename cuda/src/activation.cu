// Elementwise steps: bias, residual, SwiGLU.
#include "activation.cuh"
#include "common.cuh"
#include "overlap.cuh"

namespace orcd {

constexpr int kThreads = 256;

static unsigned blocks_for(long count) { return unsigned((count + kThreads - 1) / kThreads); }

__global__ void add_bias_kernel(float *x, int stride, const float *b, int n, int cols) {
    long i = long(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= long(n) * cols) return;
    long row = i / cols, c = i % cols;
    x[row * stride + c] += b[c];
}

__global__ void residual_kernel(float *x, const float *y, int count) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) x[i] += y[i];
}

__global__ void swiglu_kernel(const float *gate, const float *up, int stride, float *out, int n,
                              int ffn) {
    allow_next_kernel();
    wait_for_previous_kernel();
    long i = long(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= long(n) * ffn) return;
    long row = i / ffn, c = i % ffn;
    float g = gate[row * stride + c];
    out[i] = g / (1.0f + expf(-g)) * up[row * stride + c];
}

orcd_status add_bias(float *x, int stride, const float *b, int n, int cols, cudaStream_t stream) {
    add_bias_kernel<<<blocks_for(long(n) * cols), kThreads, 0, stream>>>(x, stride, b, n, cols);
    return check(cudaGetLastError(), "add_bias kernel launch");
}

orcd_status residual(float *x, const float *y, int count, cudaStream_t stream) {
    residual_kernel<<<blocks_for(count), kThreads, 0, stream>>>(x, y, count);
    return check(cudaGetLastError(), "residual kernel launch");
}

orcd_status swiglu(const float *gate, const float *up, int stride, float *out, int n, int ffn,
                   cudaStream_t stream, bool overlap) {
    return check(launch(swiglu_kernel, blocks_for(long(n) * ffn), kThreads, 0, stream, overlap,
                        gate, up, stride, out, n, ffn),
                 "swiglu kernel launch");
}

}  // namespace orcd
