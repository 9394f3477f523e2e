// Grouped-query attention over the FP16 KV cache. A block of kAttentionChunk threads handles
// one head and one chunk of positions: thread t scores position t of the chunk, then warp w
// accumulates value rows w, w + 4, ... of the chunk, lanes across head_dim (<= kAttentionChunk,
// a multiple of 8).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include "attention.cuh"
#include "common.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kMaxHeadDim = kAttentionChunk;
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

// One chunk [t0, t0 + count) of one head: its score maximum m, Σ exp(score - m) l, and the
// unnormalised Σ exp(score - m) v in acc (thread d holds feature d).
struct ChunkResult {
    float m, l, acc;
};

// A key as 16-byte loads of 8 FP16 values (head_dim % 8 == 0), all issued before any is used:
// one memory latency per key, not head_dim / 8.
struct KeyRow {
    uint4 raw[kMaxHeadDim / 8];
};

__device__ KeyRow load_key(const half *key, int head_dim) {
    const uint4 *k8 = reinterpret_cast<const uint4 *>(key);
    KeyRow k;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 8; ++i)
        k.raw[i] = 8 * i < head_dim ? k8[i] : make_uint4(0, 0, 0, 0);
    return k;
}

// q · key over head_dim features.
__device__ float dot_key(const float *q_s, const KeyRow &k, int head_dim) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 8; ++i) {
        if (8 * i >= head_dim) break;
        const half2 *h = reinterpret_cast<const half2 *>(&k.raw[i]);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            float2 f = __half22float2(h[j]);
            s = fmaf(q_s[8 * i + 2 * j], f.x, s);
            s = fmaf(q_s[8 * i + 2 * j + 1], f.y, s);
        }
    }
    return s;
}

constexpr int kWarps = kAttentionChunk / 32;
constexpr int kPairsPerLane = kMaxHeadDim / 64;  // half2 features of a value row per lane
constexpr int kRowsInFlight = 16;                // value rows a warp loads before using any

// Σ p_s[j] v_j over the chunk's positions j ≡ warp (mod kWarps), j < count: a warp reads whole
// value rows (lane holds features 2 lane + 64 a and the next), kRowsInFlight rows at a time.
__device__ void accumulate_values(const float *p_s, const half *v0, int count, int head_dim,
                                  float2 (&acc)[kPairsPerLane]) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int j0 = warp; j0 < count; j0 += kWarps * kRowsInFlight) {
        half2 v[kRowsInFlight][kPairsPerLane];
#pragma unroll
        for (int r = 0; r < kRowsInFlight; ++r)
#pragma unroll
            for (int a = 0; a < kPairsPerLane; ++a) {
                int j = j0 + r * kWarps, f = 2 * lane + 64 * a;
                v[r][a] = j < count && f < head_dim
                              ? *reinterpret_cast<const half2 *>(v0 + size_t(j) * head_dim + f)
                              : __float2half2_rn(0.0f);
            }
#pragma unroll
        for (int r = 0; r < kRowsInFlight; ++r) {
            int j = j0 + r * kWarps;
            float p = j < count ? p_s[j] : 0.0f;
#pragma unroll
            for (int a = 0; a < kPairsPerLane; ++a) {
                float2 f = __half22float2(v[r][a]);
                acc[a].x = fmaf(p, f.x, acc[a].x);
                acc[a].y = fmaf(p, f.y, acc[a].y);
            }
        }
    }
}

__device__ void load_query(const float *q, int head_dim, float *q_s) {
    float scale = 1.0f / sqrtf(float(head_dim));
    if (threadIdx.x < head_dim) q_s[threadIdx.x] = q[threadIdx.x] * scale;
    __syncthreads();
}

// Thread t scores position t (its key loads overlap the query's); then the warps share out the
// value rows and their sums meet in shared memory, added in warp order.
__device__ ChunkResult attend_chunk(const float *q, const half *kh, const half *vh, int t0,
                                    int count, int head_dim, float *q_s, float *p_s) {
    __shared__ float acc_s[kWarps][kMaxHeadDim];
    int t = threadIdx.x, lane = t % 32, warp = t / 32;
    KeyRow key = load_key(kh + size_t(t0 + min(t, count - 1)) * head_dim, head_dim);
    load_query(q, head_dim, q_s);
    float score = t < count ? dot_key(q_s, key, head_dim) : -FLT_MAX;
    float m = block_max(score);
    float p = t < count ? expf(score - m) : 0.0f;
    p_s[t] = p;
    float l = block_sum(p);  // its barriers also publish p_s
    float2 acc[kPairsPerLane] = {};
    accumulate_values(p_s, vh + size_t(t0) * head_dim, count, head_dim, acc);
#pragma unroll
    for (int a = 0; a < kPairsPerLane; ++a) {
        int f = 2 * lane + 64 * a;
        if (f < head_dim) acc_s[warp][f] = acc[a].x, acc_s[warp][f + 1] = acc[a].y;
    }
    __syncthreads();
    float sum = 0.0f;
    if (t < head_dim)
        for (int w = 0; w < kWarps; ++w) sum += acc_s[w][t];
    __syncthreads();  // p_s and acc_s are rewritten by the next chunk
    return {m, l, sum};
}

// The first key a query at pos sees.
__device__ __forceinline__ int first_key(int pos, int window) {
    return window > 0 ? max(0, pos - window + 1) : 0;
}

// The keys [first, end) the decode query at *pos0 sees, in `active` splits of kAttentionChunk
// counted from `first`: only the last split can be short, and no key before `first` is read.
struct DecodeSpan {
    int first, end, active;
};

__device__ DecodeSpan decode_span(const int *pos0, int window) {
    int first = first_key(*pos0, window), end = *pos0 + 1;
    return {first, end, (end - first + kAttentionChunk - 1) / kAttentionChunk};
}

// The sink logit of head blockIdx.x; no sinks is a sink of -∞, which takes no mass:
// max(m, -∞) = m and l + exp(-∞) = l exactly.
__device__ __forceinline__ float head_sink(const float *sinks) {
    return sinks ? sinks[blockIdx.x] : -INFINITY;
}

// Split `split` (< span.active) of head blockIdx.x.
__device__ ChunkResult attend_split(const float *q, const half *kc, const half *vc,
                                    const AttentionShape &s, const DecodeSpan &span, int split) {
    __shared__ float q_s[kMaxHeadDim], p_s[kAttentionChunk];
    int head = blockIdx.x, t0 = span.first + split * kAttentionChunk;
    int kv = head / (s.heads / s.kv_heads);
    size_t at = size_t(kv) * s.ctx * s.head_dim;
    return attend_chunk(q + size_t(head) * s.head_dim, kc + at, vc + at, t0,
                        min(kAttentionChunk, span.end - t0), s.head_dim, q_s, p_s);
}

// Stores a split's ChunkResult at index split of head blockIdx.x's `splits` partials.
__device__ void store_split(float *partial, const ChunkResult &r, int head_dim, int split,
                            int splits) {
    float *out = partial + (size_t(blockIdx.x) * splits + split) * (head_dim + 2);
    if (threadIdx.x < head_dim) out[2 + threadIdx.x] = r.acc;
    if (threadIdx.x == 0) out[0] = r.m, out[1] = r.l;
}

// Feature d of a head's output from its first `active` splits, in split order, and its sink
// (softmax mass exp(sink - m), no value). Loads go through L2 (__ldcg): the partials may come
// from other blocks of the same kernel.
__device__ float combine_splits(const float *part, int active, int head_dim, int d, float sink) {
    float m = sink;
    for (int i = 0; i < active; ++i) m = fmaxf(m, __ldcg(part + i * (head_dim + 2)));
    float l = 0.0f, acc = 0.0f;
    for (int i = 0; i < active; ++i) {
        const float *p = part + i * (head_dim + 2);
        float w = expf(__ldcg(p) - m);
        l = fmaf(__ldcg(p + 1), w, l);
        acc = fmaf(__ldcg(p + 2 + d), w, acc);
    }
    return acc / (l + expf(sink - m));
}

// Past the keys the query sees a block has nothing to do: the combine reads fewer splits.
__global__ void attention_split_kernel(const float *q, const half *kc, const half *vc,
                                       float *partial, AttentionShape s, const int *pos0) {
    DecodeSpan span = decode_span(pos0, s.window);
    if (int(blockIdx.y) < span.active)
        store_split(partial, attend_split(q, kc, vc, s, span, blockIdx.y), s.head_dim,
                    blockIdx.y, gridDim.y);
}

__global__ void attention_combine_kernel(const float *partial, float *out, AttentionShape s,
                                         int splits, const int *pos0, const float *sinks) {
    int head = blockIdx.x, d = threadIdx.x;
    const float *part = partial + size_t(head) * splits * (s.head_dim + 2);
    out[size_t(head) * s.head_dim + d] = combine_splits(
        part, decode_span(pos0, s.window).active, s.head_dim, d, head_sink(sinks));
}

// Both in one launch: blockIdx.y takes splits blockIdx.y, + gridDim.y, ... (a grid that does
// not grow with the context), and the last block of a head to finish (counted in done[head],
// 0 before and after) combines the head's splits, in split order as the combine kernel does,
// so the result does not depend on which block is last. A single split is its own result
// with the sink folded in (without a sink: acc / l exactly, its weight being expf(0) = 1).
__global__ void attention_decode_kernel(const float *q, const half *kc, const half *vc,
                                        float *partial, float *out, int *done, AttentionShape s,
                                        int splits, const int *pos0, const float *sinks) {
    __shared__ bool last;
    int head = blockIdx.x;
    DecodeSpan span = decode_span(pos0, s.window);
    int active = span.active, blocks = min(int(gridDim.y), active);  // blocks with a split
    if (int(blockIdx.y) >= blocks) return;
    float *o = out + size_t(head) * s.head_dim;
    float sink = head_sink(sinks);
    if (active == 1) {
        ChunkResult r = attend_split(q, kc, vc, s, span, 0);
        float m = fmaxf(r.m, sink), w = expf(r.m - m);
        if (threadIdx.x < s.head_dim) o[threadIdx.x] = r.acc * w / fmaf(r.l, w, expf(sink - m));
        return;
    }
    for (int split = blockIdx.y; split < active; split += gridDim.y)
        store_split(partial, attend_split(q, kc, vc, s, span, split), s.head_dim, split, splits);
    __threadfence();  // this block's partials are visible to the block that combines
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(done + head, 1) == blocks - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const float *part = partial + size_t(head) * splits * (s.head_dim + 2);
    if (threadIdx.x < s.head_dim)
        o[threadIdx.x] = combine_splits(part, active, s.head_dim, threadIdx.x, sink);
    if (threadIdx.x == 0) done[head] = 0;
}

static int ctx_splits(const AttentionShape &s) {
    return (s.ctx + kAttentionChunk - 1) / kAttentionChunk;
}

// The most splits a decode query can see: those of the whole context, or of one window.
static int decode_splits(const AttentionShape &s) {
    int window = (s.window + kAttentionChunk - 1) / kAttentionChunk;
    return s.window > 0 ? std::min(ctx_splits(s), window) : ctx_splits(s);
}

size_t attention_decode_partial_floats(const AttentionShape &s) {
    return size_t(s.heads) * ctx_splits(s) * (s.head_dim + 2);
}

orcd_status attention_decode(const float *q, const half *k_cache, const half *v_cache,
                             float *out, float *partial, const AttentionShape &s,
                             const int *pos0, cudaStream_t stream, const float *sinks) {
    int splits = decode_splits(s);
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
                                        cudaStream_t stream, const float *sinks) {
    int splits = decode_splits(s);
    dim3 grid(s.heads, std::min(splits, kMaxSplitBlocks));
    attention_decode_kernel<<<grid, kAttentionChunk, 0, stream>>>(
        q, k_cache, v_cache, partial, out, done, s, splits, pos0, sinks);
    return check(cudaGetLastError(), "attention_decode kernel launch");
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
    for (int k0 = first_key(*pos0 + q0, s.window); k0 < keys; k0 += kTileKeys) {
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
    float sink = head_sink(sinks), m_sink = fmaxf(m, sink), correction = expf(m - m_sink);
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
