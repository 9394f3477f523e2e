// The decode attention's device pieces (attention.cu), shared with the persistent decode kernel
// (decode_persistent.cu): a block of kAttentionChunk threads handles one head and one chunk of
// positions: thread t scores position t of the chunk, then warp w accumulates value rows w,
// w + 4, ... of the chunk, lanes across head_dim (<= kAttentionChunk, a multiple of 8). A wider
// block (the persistent kernel's; whole warps) gives the same bits: its threads past
// kAttentionChunk score no position and only take part in the barriers and reductions.
// q and the cache are read through L2 (__ldcg): inside one persistent kernel an earlier stage
// wrote them from other SMs, and L1 is not coherent.
#pragma once
#include <cfloat>
#include <cmath>
#include "attention.cuh"
#include "reduce.cuh"

namespace orcd {

constexpr int kMaxHeadDim = kAttentionChunk;

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

__device__ inline KeyRow load_key(const half *key, int head_dim) {
    const uint4 *k8 = reinterpret_cast<const uint4 *>(key);
    KeyRow k;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 8; ++i)
        k.raw[i] = 8 * i < head_dim ? __ldcg(k8 + i) : make_uint4(0, 0, 0, 0);
    return k;
}

// q · key over head_dim features.
__device__ inline float dot_key(const float *q_s, const KeyRow &k, int head_dim) {
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
__device__ inline void accumulate_values(const float *p_s, const half *v0, int count, int head_dim,
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
                              ? __ldcg(reinterpret_cast<const half2 *>(v0 + size_t(j) * head_dim + f))
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

__device__ inline void load_query(const float *q, int head_dim, float *q_s) {
    float scale = 1.0f / sqrtf(float(head_dim));
    if (threadIdx.x < head_dim) q_s[threadIdx.x] = __ldcg(q + threadIdx.x) * scale;
    __syncthreads();
}

// Thread t scores position t (its key loads overlap the query's); then the warps share out the
// value rows and their sums meet in shared memory, added in warp order.
__device__ inline ChunkResult attend_chunk(const float *q, const half *kh, const half *vh, int t0,
                                    int count, int head_dim, float *q_s, float *p_s) {
    __shared__ float acc_s[kWarps][kMaxHeadDim];
    int t = threadIdx.x, lane = t % 32, warp = t / 32;
    KeyRow key = load_key(kh + size_t(t0 + min(t, count - 1)) * head_dim, head_dim);
    load_query(q, head_dim, q_s);
    float score = t < count ? dot_key(q_s, key, head_dim) : -FLT_MAX;
    float m = block_max(score);
    float p = t < count ? expf(score - m) : 0.0f;
    if (t < kAttentionChunk) p_s[t] = p;
    float l = block_sum(p);  // its barriers also publish p_s
    if (warp < kWarps) {  // a wider block's other warps only meet the barriers
        float2 acc[kPairsPerLane] = {};
        accumulate_values(p_s, vh + size_t(t0) * head_dim, count, head_dim, acc);
#pragma unroll
        for (int a = 0; a < kPairsPerLane; ++a) {
            int f = 2 * lane + 64 * a;
            if (f < head_dim) acc_s[warp][f] = acc[a].x, acc_s[warp][f + 1] = acc[a].y;
        }
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

__device__ inline DecodeSpan decode_span(const int *pos0, int window) {
    int first = first_key(*pos0, window), end = *pos0 + 1;
    return {first, end, (end - first + kAttentionChunk - 1) / kAttentionChunk};
}

// The sink logit of a head; no sinks is a sink of -∞, which takes no mass:
// max(m, -∞) = m and l + exp(-∞) = l exactly.
__device__ __forceinline__ float head_sink(const float *sinks, int head) {
    return sinks ? sinks[head] : -INFINITY;
}

// Split `split` (< span.active) of a head.
__device__ inline ChunkResult attend_split(const float *q, const half *kc, const half *vc,
                                           const AttentionShape &s, const DecodeSpan &span,
                                           int head, int split) {
    __shared__ float q_s[kMaxHeadDim], p_s[kAttentionChunk];
    int t0 = span.first + split * kAttentionChunk;
    int kv = head / (s.heads / s.kv_heads);
    size_t at = size_t(kv) * s.ctx * s.head_dim;
    return attend_chunk(q + size_t(head) * s.head_dim, kc + at, vc + at, t0,
                        min(kAttentionChunk, span.end - t0), s.head_dim, q_s, p_s);
}

// Stores a split's ChunkResult at index split of a head's `splits` partials.
__device__ inline void store_split(float *partial, const ChunkResult &r, int head_dim, int head,
                                   int split, int splits) {
    float *out = partial + (size_t(head) * splits + split) * (head_dim + 2);
    if (threadIdx.x < head_dim) out[2 + threadIdx.x] = r.acc;
    if (threadIdx.x == 0) out[0] = r.m, out[1] = r.l;
}

// Feature d of a head's output from its first `active` splits, in split order, and its sink
// (softmax mass exp(sink - m), no value). Loads go through L2 (__ldcg): the partials may come
// from other blocks of the same kernel.
__device__ inline float combine_splits(const float *part, int active, int head_dim, int d, float sink) {
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

// Both in one launch, head `head` as one of ny blocks: block y takes splits y, y + ny, ... (a
// grid that does not grow with the context), and the last block of a head to finish (counted in done[head],
// 0 before and after) combines the head's splits, in split order as the combine kernel does,
// so the result does not depend on which block is last. A single split is its own result
// with the sink folded in (without a sink: acc / l exactly, its weight being expf(0) = 1).
__device__ inline void attention_decode_block(const DecodeAttention &d, int head, int y, int ny) {
    __shared__ bool last;
    const AttentionShape &s = d.s;
    DecodeSpan span = decode_span(d.pos0, s.window);
    int active = span.active, blocks = min(ny, active);  // blocks with a split
    if (y >= blocks) return;
    float *o = d.out + size_t(head) * s.head_dim;
    float sink = head_sink(d.sinks, head);
    if (active == 1) {
        ChunkResult r = attend_split(d.q, d.kc, d.vc, s, span, head, 0);
        float m = fmaxf(r.m, sink), w = expf(r.m - m);
        if (threadIdx.x < s.head_dim) o[threadIdx.x] = r.acc * w / fmaf(r.l, w, expf(sink - m));
        return;
    }
    for (int split = y; split < active; split += ny)
        store_split(d.partial, attend_split(d.q, d.kc, d.vc, s, span, head, split), s.head_dim,
                    head, split, d.splits);
    __threadfence();  // this block's partials are visible to the block that combines
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(d.done + head, 1) == blocks - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const float *part = d.partial + size_t(head) * d.splits * (s.head_dim + 2);
    if (threadIdx.x < s.head_dim)
        o[threadIdx.x] = combine_splits(part, active, s.head_dim, threadIdx.x, sink);
    if (threadIdx.x == 0) d.done[head] = 0;
    __syncthreads();  // `last` is read by every thread before the next head may rewrite it
}


}  // namespace orcd
