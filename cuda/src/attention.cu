// Grouped-query attention over the FP16 KV cache: the cache store and decode
// (attention_decode.cuh's blocks); prefill is in attention_prefill.cu.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include "attention_decode.cuh"
#include "common.cuh"
#include "overlap.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kMaxSplitBlocks = 32;  // per head in attention_decode_kernel's grid

__global__ void kv_store_kernel(const float *k, const float *v, int stride, half *kc, half *vc,
                                AttentionShape s, const int *pos0) {
    int token = blockIdx.x, head = blockIdx.y;
    size_t dst = (size_t(head) * s.ctx + *pos0 + token) * s.head_dim;
    size_t src = size_t(token) * stride + size_t(head) * s.head_dim;
    for (int d = threadIdx.x; d < s.head_dim; d += blockDim.x) {
        kc[dst + d] = __float2half_rn(k[src + d]);
        vc[dst + d] = __float2half_rn(v[src + d]);
    }
}

orcd_status kv_store(const float *k, const float *v, int stride, int n, half *k_cache,
                     half *v_cache, const AttentionShape &s, const int *pos0, cudaStream_t stream) {
    kv_store_kernel<<<dim3(n, s.kv_heads), kMaxHeadDim, 0, stream>>>(k, v, stride, k_cache,
                                                                     v_cache, s, pos0);
    return check(cudaGetLastError(), "kv_store kernel launch");
}

// Past the keys the query sees a block has nothing to do: the combine reads fewer splits.
__global__ void attention_split_kernel(const float *q, const half *kc, const half *vc,
                                       float *partial, AttentionShape s, const int *pos0) {
    DecodeSpan span = decode_span(pos0, s.window);
    if (int(blockIdx.y) < span.active)
        store_split(partial, attend_split(q, kc, vc, s, span, blockIdx.x, blockIdx.y), s.head_dim,
                    blockIdx.x, blockIdx.y, gridDim.y);
}

__global__ void attention_combine_kernel(const float *partial, float *out, AttentionShape s,
                                         int splits, const int *pos0, const float *sinks) {
    int head = blockIdx.x, d = threadIdx.x;
    const float *part = partial + size_t(head) * splits * (s.head_dim + 2);
    out[size_t(head) * s.head_dim + d] = combine_splits(
        part, decode_span(pos0, s.window).active, s.head_dim, d, head_sink(sinks, head));
}

__global__ void attention_decode_kernel(const DecodeAttention d) {
    wait_for_previous_kernel();  // q and this position's K, V (overlap.cuh)
    allow_next_kernel();
    attention_decode_block(d, blockIdx.x, blockIdx.y, gridDim.y);
}

static int ctx_splits(const AttentionShape &s) {
    return (s.ctx + kAttentionChunk - 1) / kAttentionChunk;
}

int attention_decode_splits(const AttentionShape &s) {
    int window = (s.window + kAttentionChunk - 1) / kAttentionChunk;
    return s.window > 0 ? std::min(ctx_splits(s), window) : ctx_splits(s);
}

size_t attention_decode_partial_floats(const AttentionShape &s) {
    return size_t(s.heads) * ctx_splits(s) * (s.head_dim + 2);
}

orcd_status attention_decode(const float *q, const half *k_cache, const half *v_cache,
                             float *out, float *partial, const AttentionShape &s,
                             const int *pos0, cudaStream_t stream, const float *sinks) {
    int splits = attention_decode_splits(s);
    attention_split_kernel<<<dim3(s.heads, splits), kAttentionChunk, 0, stream>>>(
        q, k_cache, v_cache, partial, s, pos0);
    ORCD_CUDA(cudaGetLastError());
    attention_combine_kernel<<<s.heads, s.head_dim, 0, stream>>>(partial, out, s, splits, pos0,
                                                                 sinks);
    return check(cudaGetLastError(), "attention_combine kernel launch");
}

orcd_status attention_decode_one_launch(const float *q, const half *k_cache, const half *v_cache,
                                        float *out, float *partial, int *done,
                                        const AttentionShape &s, const int *pos0,
                                        cudaStream_t stream, const float *sinks, bool overlap) {
    int splits = attention_decode_splits(s);
    dim3 grid(s.heads, std::min(splits, kMaxSplitBlocks));
    DecodeAttention d{q, k_cache, v_cache, partial, out, done, s, splits, pos0, sinks};
    return check(launch(attention_decode_kernel, grid, kAttentionChunk, 0, stream, overlap, d),
                 "attention_decode kernel launch");
}

}  // namespace orcd
