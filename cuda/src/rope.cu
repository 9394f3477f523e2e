// Rotary position embedding, NORM (llama, over GGUF's permuted Q/K rows) or NEOX (qwen2,
// phi3), fused with the KV cache's write of the rotated keys and the values.
#include "common.cuh"
#include "overlap.cuh"
#include "rope.cuh"

namespace orcd {

constexpr int kRopeThreads = 256;

// A block per row. Thread j rotates pair j % (dims/2) of heads j / (dims/2), + lanes, ... (q's
// heads, then k's), its pair's cos and sin computed once for all of them; then the block
// writes the kv heads' K (rotated) and V into the cache at *pos0 + row. (A block per row and
// head, a pair a thread, computed each angle once per head and left most threads idle: GPT-OSS,
// 72 heads of 32 pairs, 45 us a layer at 512 tokens on the H200.)
__global__ void __launch_bounds__(kRopeThreads)
rope_store_kernel(float *q, float *k, const float *v, int q_stride, int kv_stride, int heads,
                  RopeTable t, half *kc, half *vc, AttentionShape s, const int *pos0) {
    allow_next_kernel();
    wait_for_previous_kernel();
    int token = blockIdx.x, pos = *pos0 + token, pairs = t.dims / 2;
    int lanes = kRopeThreads / pairs, i = threadIdx.x % pairs, lane = threadIdx.x / pairs;
    float *qr = q + size_t(token) * q_stride, *kr = k + size_t(token) * kv_stride;
    if (lane < lanes) {
        PairAngle a = pair_angle(i, t, pos);
        for (int head = lane; head < heads + s.kv_heads; head += lanes)
            rotate_pair(head < heads ? qr + size_t(head) * s.head_dim
                                     : kr + size_t(head - heads) * s.head_dim,
                        i, t, a);
    }
    __syncthreads();  // K's rotated values, written by other threads of the block
    const float *vr = v + size_t(token) * kv_stride;
    for (int e = threadIdx.x; e < s.kv_heads * s.head_dim; e += kRopeThreads) {
        size_t dst = (size_t(e / s.head_dim) * s.ctx + pos) * s.head_dim + e % s.head_dim;
        kc[dst] = __float2half_rn(kr[e]);
        vc[dst] = __float2half_rn(vr[e]);
    }
}

orcd_status rope_store(float *q, float *k, const float *v, int q_stride, int kv_stride, int n,
                       int heads, const RopeTable &table, half *k_cache, half *v_cache,
                       const AttentionShape &s, const int *pos0, cudaStream_t stream,
                       bool overlap) {
    return check(launch(rope_store_kernel, dim3(n), kRopeThreads, 0, stream, overlap, q, k, v,
                        q_stride, kv_stride, heads, table, k_cache, v_cache, s, pos0),
                 "rope_store kernel launch");
}

}  // namespace orcd
