// Rotary position embedding, NORM (llama, over GGUF's permuted Q/K rows) or NEOX (qwen2,
// phi3). Angles in double: the same float32 cos/sin as the NumPy reference at any position.
#include "common.cuh"
#include "rope.cuh"

namespace orcd {

__global__ void rope_kernel(float *x, int stride, int head_dim, RopeTable t, const int *pos0) {
    int i = threadIdx.x;  // pair index, < dims/2
    float *h = x + size_t(blockIdx.x) * stride + size_t(blockIdx.y) * head_dim;
    double theta = double(*pos0 + int(blockIdx.x)) * t.inv_freq[i];
    float c = float(cos(theta) * t.scale), s = float(sin(theta) * t.scale);
    int a = t.neox ? i : 2 * i, b = t.neox ? i + t.dims / 2 : 2 * i + 1;
    float xa = h[a], xb = h[b];
    h[a] = xa * c - xb * s;
    h[b] = xa * s + xb * c;
}

orcd_status rope(float *x, int n, int stride, int heads, int head_dim, const RopeTable &table,
                 const int *pos0, cudaStream_t stream) {
    rope_kernel<<<dim3(n, heads), table.dims / 2, 0, stream>>>(x, stride, head_dim, table, pos0);
    return check(cudaGetLastError(), "rope kernel launch");
}

}  // namespace orcd
