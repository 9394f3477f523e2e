// Rotary position embedding, NORM (llama, over GGUF's permuted Q/K rows) or NEOX (qwen2,
// phi3), fused with the KV cache's write of the rotated keys and the values.
#include "attention_decode.cuh"
#include "common.cuh"
#include "overlap.cuh"
#include "rope.cuh"

namespace orcd {

// A block per row and head, the q heads' first: rope on the head in place, and for a kv head
// its K (rotated) and V into the cache at *pos0 + row.
__global__ void rope_store_kernel(float *q, float *k, const float *v, int q_stride, int kv_stride,
                                  int heads, RopeTable t, half *kc, half *vc, AttentionShape s,
                                  const int *pos0) {
    allow_next_kernel();
    wait_for_previous_kernel();
    int token = blockIdx.x, head = blockIdx.y, kv_head = head - heads, pos = *pos0 + token;
    bool is_q = head < heads;
    float *h = is_q ? q + size_t(token) * q_stride + size_t(head) * s.head_dim
                    : k + size_t(token) * kv_stride + size_t(kv_head) * s.head_dim;
    if (int(threadIdx.x) < t.dims / 2) rotate_pair(h, threadIdx.x, t, pos);
    if (is_q) return;  // the whole block
    __syncthreads();   // the head's rotated values, written by other threads of the block
    const float *vh = v + size_t(token) * kv_stride + size_t(kv_head) * s.head_dim;
    size_t dst = (size_t(kv_head) * s.ctx + pos) * s.head_dim;
    for (int d = threadIdx.x; d < s.head_dim; d += blockDim.x) {
        kc[dst + d] = __float2half_rn(h[d]);
        vc[dst + d] = __float2half_rn(vh[d]);
    }
}

orcd_status rope_store(float *q, float *k, const float *v, int q_stride, int kv_stride, int n,
                       int heads, const RopeTable &table, half *k_cache, half *v_cache,
                       const AttentionShape &s, const int *pos0, cudaStream_t stream,
                       bool overlap) {
    dim3 grid(n, heads + s.kv_heads);
    return check(launch(rope_store_kernel, grid, kMaxHeadDim, 0, stream, overlap, q, k, v, q_stride,
                        kv_stride, heads, table, k_cache, v_cache, s, pos0),
                 "rope_store kernel launch");
}

}  // namespace orcd
