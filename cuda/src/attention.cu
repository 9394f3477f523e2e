// Grouped-query attention over the FP16 KV cache: decode (attention_decode.cuh's blocks) and
// prefill (tiles of queries against chunks of keys).
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

// Prefill: a block takes one head and a tile of kTileQueries queries, walks the keys in chunks
// of kTileKeys staged in shared memory (each chunk is read once per tile, not per query), and
// keeps an online softmax per query: 8 threads per query, thread `lane` holding output
// features lane, lane + 8, ... With a window the walk starts at the tile's first query's first
// key (no earlier key is read) and each query skips the chunk's keys before its own first.
constexpr int kTileQueries = 16, kTileKeys = 32, kPrefillThreads = 8 * kTileQueries;
constexpr int kKeyPitch = kMaxHeadDim + 1;  // shared rows off by one bank: conflict-free dots

__global__ void __launch_bounds__(kPrefillThreads)
attention_prefill_kernel(const float *q, int q_stride, const half *kc, const half *vc, float *out,
                         int n, AttentionShape s, const int *pos0, const float *sinks) {
    __shared__ float q_s[kTileQueries][kMaxHeadDim];
    __shared__ float k_s[kTileKeys][kKeyPitch];
    __shared__ float v_s[kTileKeys][kMaxHeadDim];
    __shared__ float score_s[kTileQueries][kTileKeys];
    int head = blockIdx.x, q0 = blockIdx.y * kTileQueries, hd = s.head_dim;
    int rows = min(kTileQueries, n - q0), keys = *pos0 + q0 + rows;  // keys the tile needs
    size_t kv = size_t(head / (s.heads / s.kv_heads)) * s.ctx * hd;
    float scale = 1.0f / sqrtf(float(hd));
    for (int i = threadIdx.x; i < kTileQueries * hd; i += blockDim.x) {
        int r = i / hd, d = i % hd;
        q_s[r][d] = r < rows ? q[size_t(q0 + r) * q_stride + size_t(head) * hd + d] * scale : 0.0f;
    }
    int row = threadIdx.x / 8, lane = threadIdx.x % 8, pos = *pos0 + q0 + row;
    int first = first_key(pos, s.window);
    float m = -FLT_MAX, l = 0.0f, acc[kMaxHeadDim / 8] = {};
    // Chunks start at multiples of kTileKeys, whichever tile the query is in: its sums take
    // the same order in any prefill (a cached prompt's rows are prefilled in other tiles).
    for (int k0 = first_key(*pos0 + q0, s.window) / kTileKeys * kTileKeys; k0 < keys;
         k0 += kTileKeys) {
        __syncthreads();  // the previous chunk is consumed (and q_s written, the first time)
        for (int i = threadIdx.x; i < kTileKeys * hd; i += blockDim.x) {
            int j = i / hd, d = i % hd;
            bool in = k0 + j < keys;
            k_s[j][d] = in ? __half2float(kc[kv + size_t(k0 + j) * hd + d]) : 0.0f;
            v_s[j][d] = in ? __half2float(vc[kv + size_t(k0 + j) * hd + d]) : 0.0f;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < kTileQueries * kTileKeys; i += blockDim.x) {
            int r = i / kTileKeys, j = i % kTileKeys;
            float dot = 0.0f;
            for (int d = 0; d < hd; ++d) dot = fmaf(q_s[r][d], k_s[j][d], dot);
            score_s[r][j] = dot;
        }
        __syncthreads();
        // the query sees the chunk's keys [lo, visible): first <= position <= pos
        int lo = max(0, first - k0), visible = min(kTileKeys, pos + 1 - k0);
        if (row >= rows || visible <= lo) continue;
        float chunk_max = -FLT_MAX;
        for (int j = lo; j < visible; ++j) chunk_max = fmaxf(chunk_max, score_s[row][j]);
        float m_new = fmaxf(m, chunk_max), correction = expf(m - m_new);
        l *= correction;
#pragma unroll
        for (int a = 0; a < kMaxHeadDim / 8; ++a) acc[a] *= correction;
        for (int j = lo; j < visible; ++j) {
            float p = expf(score_s[row][j] - m_new);
            l += p;
#pragma unroll
            for (int a = 0; a < kMaxHeadDim / 8; ++a)
                if (8 * a < hd) acc[a] = fmaf(p, v_s[j][lane + 8 * a], acc[a]);
        }
        m = m_new;
    }
    if (row >= rows) return;
    // the sink joins the softmax last: mass exp(sink - m), no value
    float sink = head_sink(sinks, head), m_sink = fmaxf(m, sink), correction = expf(m - m_sink);
    l = fmaf(l, correction, expf(sink - m_sink));
    float *o = out + (size_t(q0 + row) * s.heads + head) * hd;
#pragma unroll
    for (int a = 0; a < kMaxHeadDim / 8; ++a)
        if (8 * a < hd) o[lane + 8 * a] = acc[a] * correction / l;
}

orcd_status attention_prefill(const float *q, int q_stride, const half *k_cache,
                              const half *v_cache, float *out, int n, const AttentionShape &s,
                              const int *pos0, cudaStream_t stream, const float *sinks) {
    dim3 grid(s.heads, (n + kTileQueries - 1) / kTileQueries);
    attention_prefill_kernel<<<grid, kPrefillThreads, 0, stream>>>(q, q_stride, k_cache, v_cache,
                                                                   out, n, s, pos0, sinks);
    return check(cudaGetLastError(), "attention_prefill kernel launch");
}

}  // namespace orcd
