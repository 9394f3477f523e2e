// Prefill attention: n queries against one layer's FP16 KV cache (causal, GQA, optional sliding
// window and sinks). A head_dim that is a multiple of 16 runs on tensor cores
// (flash-attention 2); any other on the scalar kernel below.
//
// Determinism (a query's output is the same bits in whatever call, tile or split it is
// computed): keys are walked in chunks of kChunkKeys and segments of kSegmentKeys at fixed
// multiples of their size in absolute position. Each segment's softmax state starts empty, and
// a query's result is the left fold of its segment states in segment order, by the same
// join() whether one block walks every segment or the segments are split over blocks and
// joined by the combine kernel. A chunk or segment a query sees nothing of leaves its state
// exactly as it was (see join() and attend_chunk()), so a tile may walk more of them than the
// query needs.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include "attention_decode.cuh"
#include "common.cuh"
#include "context.cuh"
#include "overlap.cuh"

namespace orcd {

// The scalar path (head_dim not a multiple of 16): a block takes one head and a tile of
// kTileQueries queries, walks the keys in chunks of kTileKeys staged in shared memory (each
// chunk is read once per tile, not per query), and keeps an online softmax per query: 8 threads
// per query, thread `lane` holding output features lane, lane + 8, ... With a window the walk
// starts at the tile's first query's first key (no earlier key is read) and each query skips
// the chunk's keys before its own first.
constexpr int kTileQueries = 16, kTileKeys = 32, kPrefillThreads = 8 * kTileQueries;
constexpr int kKeyPitch = kMaxHeadDim + 1;  // shared rows off by one bank: conflict-free dots

__global__ void __launch_bounds__(kPrefillThreads)
attention_prefill_scalar_kernel(const float *q, int q_stride, const half *kc, const half *vc,
                                float *out, int n, AttentionShape s, const int *pos0,
                                const float *sinks) {
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


constexpr int kFlashWarps = 4, kTileRows = 16 * kFlashWarps, kFlashThreads = 32 * kFlashWarps;
constexpr int kChunkKeys = 64, kSegmentKeys = kPrefillSegmentKeys;
constexpr int kSegmentChunks = kSegmentKeys / kChunkKeys;
// The model's split buffer: partials of kSplitRows queries, at most kMaxPartialFloats (16 MiB).
constexpr int kSplitRows = kTileRows;
constexpr size_t kMaxPartialFloats = size_t(4) << 20;

// A block's tile: queries q0 .. q0 + rows - 1 of one head, which read the keys first .. last.
struct PrefillTile {
    int head, q0, rows, pos0, first, last;
    size_t kv;  // offset of the head's kv head in the cache
};

__device__ inline PrefillTile prefill_tile(int n, const AttentionShape &s, const int *pos0,
                                           int head, int tile) {
    PrefillTile t;
    t.head = head;
    t.q0 = tile * kTileRows;
    t.rows = min(kTileRows, n - t.q0);
    t.pos0 = *pos0;
    t.first = first_key(t.pos0 + t.q0, s.window);
    t.last = t.pos0 + t.q0 + t.rows - 1;
    t.kv = size_t(head / (s.heads / s.kv_heads)) * s.ctx * s.head_dim;
    return t;
}

// Joining two softmax states (m, l, acc) over disjoint keys: both rescaled to m = max(m_a, m_b).
// An empty state (m = -∞, l = 0, acc = 0) is the identity on either side, bit for bit:
// exp(0) = 1, exp(-∞) = 0 and x·1 + 0·0 = x (acc is never -0: it starts +0 and only gains
// sums). Two empty states stay empty (the base 0 avoids -∞ - -∞).
struct Rescale {
    float m, a, b;
};

__device__ __forceinline__ Rescale rescale(float m_a, float m_b) {
    float m = fmaxf(m_a, m_b), base = m == -INFINITY ? 0.0f : m;
    return {m, expf(m_a - base), expf(m_b - base)};
}

// x_a·a + x_b·b, rounded the same way wherever it is computed (no contraction left to choose)
__device__ __forceinline__ float join(float x_a, float x_b, const Rescale &r) {
    return fmaf(x_b, r.b, __fmul_rn(x_a, r.a));
}

// The sink joins the softmax last: mass exp(sink - m), no value. out = acc · scale / l.
struct Normalizer {
    float scale, l;
};

__device__ __forceinline__ Normalizer with_sink(float m, float l, float sink) {
    float m_sink = fmaxf(m, sink), scale = expf(m - m_sink);
    return {scale, fmaf(l, scale, expf(sink - m_sink))};
}

__device__ __forceinline__ float normalized(float acc, const Normalizer &z) {
    return __fdiv_rn(__fmul_rn(acc, z.scale), z.l);
}

// Shared memory of a block: its queries (×1/√d) as FP16 hi + lo parts, so that q·k keeps FP32
// precision from two FP16 products (k is FP16 already), and two stages of K and V chunks.
// Rows are padded by 16 bytes: ldmatrix's eight rows fall in different banks.
template <int HD>
struct FlashSmem {
    static constexpr int kPitch = HD + 8;
    half q_hi[kTileRows][kPitch], q_lo[kTileRows][kPitch];
    half k[2][kChunkKeys][kPitch], v[2][kChunkKeys][kPitch];
};

__device__ __forceinline__ uint32_t shared_address(const void *p) {
    return uint32_t(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const half *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(p))
                 : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const half *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(p))
                 : "memory");
}

// c[16×8] += a[16×16] b[16×8], FP16 inputs, FP32 accumulators (the m16n8k16 fragment layouts)
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                 "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes global → shared without a register; zeros instead when !in (nothing is read)
__device__ __forceinline__ void copy_async(half *dst, const half *src, bool in) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)),
                 "l"(src), "r"(in ? 16 : 0)
                 : "memory");
}

__device__ __forceinline__ void copy_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most one committed group is still in flight.
__device__ __forceinline__ void copy_async_wait_all_but_one() {
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

__device__ __forceinline__ uint32_t as_bits(half2 h) {
    return *reinterpret_cast<uint32_t *>(&h);
}

// (x, y) = hi + lo in FP16, the pair packed as an mma operand register (x in the low half);
// __fsub_rn: never contracted with the product that made x
__device__ __forceinline__ void split_f16(float x, float y, uint32_t &hi, uint32_t &lo) {
    half2 h = __floats2half2_rn(x, y);
    float2 back = __half22float2(h);
    hi = as_bits(h);
    lo = as_bits(__floats2half2_rn(__fsub_rn(x, back.x), __fsub_rn(y, back.y)));
}

// One warp's online softmax over its 16 rows, in mma accumulator layout: lane holds rows
// g = lane / 4 and g + 8 (index r = 0, 1), and of output column tile t the features
// 8t + 2(lane % 4) + {0, 1} (acc[t][2r], acc[t][2r + 1]).
template <int HD>
struct RowsState {
    float m[2], l[2], acc[HD / 8][4];

    __device__ __forceinline__ void clear() {
#pragma unroll
        for (int r = 0; r < 2; ++r) m[r] = -INFINITY, l[r] = 0.0f;
#pragma unroll
        for (int t = 0; t < HD / 8; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[t][e] = 0.0f;
    }

    // this = this then b (b's keys after this one's)
    __device__ __forceinline__ void join_with(const RowsState &b) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            Rescale x = rescale(m[r], b.m[r]);
            m[r] = x.m;
            l[r] = join(l[r], b.l[r], x);
#pragma unroll
            for (int t = 0; t < HD / 8; ++t)
#pragma unroll
                for (int e = 2 * r; e < 2 * r + 2; ++e) acc[t][e] = join(acc[t][e], b.acc[t][e], x);
        }
    }
};

__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Scales the block's queries by 1/√d into q_hi + q_lo; rows past the tile are zero.
template <int HD>
__device__ void stage_queries(FlashSmem<HD> &sm, const float *q, int q_stride,
                              const PrefillTile &t) {
    float scale = 1.0f / sqrtf(float(HD));
    for (int i = threadIdx.x; i < kTileRows * HD; i += kFlashThreads) {
        int r = i / HD, d = i % HD;
        // no contraction into x - hi: lo must be of the rounded product in every kernel
        float x = r < t.rows
                      ? __fmul_rn(q[size_t(t.q0 + r) * q_stride + size_t(t.head) * HD + d], scale)
                      : 0.0f;
        half hi = __float2half_rn(x);
        sm.q_hi[r][d] = hi;
        sm.q_lo[r][d] = __float2half_rn(x - __half2float(hi));
    }
}

// Chunk c's keys and values into a stage; keys outside the tile's first .. last are zeros, not
// read (they may be unwritten cache rows: NaN times a zero weight would still be NaN).
template <int HD>
__device__ void load_chunk(FlashSmem<HD> &sm, int stage, int c, const half *kc, const half *vc,
                           const PrefillTile &t) {
    for (int i = threadIdx.x; i < kChunkKeys * HD / 8; i += kFlashThreads) {
        int j = i / (HD / 8), d = i % (HD / 8) * 8, key = c * kChunkKeys + j;
        bool in = key >= t.first && key <= t.last;
        size_t at = t.kv + size_t(in ? key : t.first) * HD + d;
        copy_async(&sm.k[stage][j][d], kc + at, in);
        copy_async(&sm.v[stage][j][d], vc + at, in);
    }
}

// One warp's 16 rows against the chunk c in `stage`: scores on tensor cores, the keys a row
// does not see (before its window, after its position) set to -∞ by selection, then the
// online-softmax step and acc += P V with P as FP16 hi + lo. A row that sees none of the chunk
// keeps its state: max unchanged, exp(0) = 1, P = 0 (V holds zeros or finite values).
template <int HD>
__device__ void attend_chunk(const FlashSmem<HD> &sm, int stage, int c, const PrefillTile &t,
                             int window, RowsState<HD> &st) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, pair = 2 * (lane % 4);
    float s[kChunkKeys / 8][4] = {};
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
        uint32_t q_hi[4], q_lo[4];
        int row = warp * 16 + lane % 16, col = ks * 16 + lane / 16 * 8;
        ldmatrix_x4(q_hi, &sm.q_hi[row][col]);
        ldmatrix_x4(q_lo, &sm.q_lo[row][col]);
#pragma unroll
        for (int j = 0; j < kChunkKeys / 16; ++j) {
            uint32_t b[4];
            int key = 16 * j + lane % 8 + lane / 16 * 8, dim = ks * 16 + lane / 8 % 2 * 8;
            ldmatrix_x4(b, &sm.k[stage][key][dim]);
            mma(s[2 * j], q_hi, b[0], b[1]);
            mma(s[2 * j], q_lo, b[0], b[1]);
            mma(s[2 * j + 1], q_hi, b[2], b[3]);
            mma(s[2 * j + 1], q_lo, b[2], b[3]);
        }
    }
    float base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        int pos = t.pos0 + t.q0 + warp * 16 + g + 8 * r, first = first_key(pos, window);
        float chunk_max = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kChunkKeys / 8; ++nt)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) {
                int key = c * kChunkKeys + nt * 8 + pair + e % 2;
                s[nt][e] = key >= first && key <= pos ? s[nt][e] : -INFINITY;
                chunk_max = fmaxf(chunk_max, s[nt][e]);
            }
        float m_new = fmaxf(st.m[r], quad_max(chunk_max));
        base[r] = m_new == -INFINITY ? 0.0f : m_new;
        float correction = expf(st.m[r] - base[r]), sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kChunkKeys / 8; ++nt)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) {
                s[nt][e] = expf(s[nt][e] - base[r]);
                sum = __fadd_rn(sum, s[nt][e]);  // not contracted with exp's last product
            }
        st.m[r] = m_new;
        st.l[r] = fmaf(st.l[r], correction, quad_sum(sum));
#pragma unroll
        for (int nt = 0; nt < HD / 8; ++nt)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e)
                st.acc[nt][e] = __fmul_rn(st.acc[nt][e], correction);
    }
#pragma unroll
    for (int kk = 0; kk < kChunkKeys / 16; ++kk) {
        // the accumulators of key tiles 2kk, 2kk + 1 are the A operand of keys 16kk .. 16kk + 15
        uint32_t p_hi[4], p_lo[4];
        split_f16(s[2 * kk][0], s[2 * kk][1], p_hi[0], p_lo[0]);
        split_f16(s[2 * kk][2], s[2 * kk][3], p_hi[1], p_lo[1]);
        split_f16(s[2 * kk + 1][0], s[2 * kk + 1][1], p_hi[2], p_lo[2]);
        split_f16(s[2 * kk + 1][2], s[2 * kk + 1][3], p_hi[3], p_lo[3]);
#pragma unroll
        for (int dt = 0; dt < HD / 16; ++dt) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, &sm.v[stage][16 * kk + lane % 16][dt * 16 + lane / 16 * 8]);
            mma(st.acc[2 * dt], p_hi, b[0], b[1]);
            mma(st.acc[2 * dt], p_lo, b[0], b[1]);
            mma(st.acc[2 * dt + 1], p_hi, b[2], b[3]);
            mma(st.acc[2 * dt + 1], p_lo, b[2], b[3]);
        }
    }
}

// The tile's state over segment `seg` (from empty): its chunks double-buffered through cp.async.
template <int HD>
__device__ void attend_segment(FlashSmem<HD> &sm, int seg, const half *kc, const half *vc,
                               const PrefillTile &t, int window, RowsState<HD> &st) {
    int begin = max(seg * kSegmentChunks, t.first / kChunkKeys);
    int end = min(seg * kSegmentChunks + kSegmentChunks - 1, t.last / kChunkKeys);
    bool has_rows = int(threadIdx.x / 32) * 16 < t.rows;
    st.clear();
    load_chunk(sm, 0, begin, kc, vc, t);
    copy_async_commit();
    for (int c = begin; c <= end; ++c) {
        int stage = (c - begin) % 2;
        if (c < end) load_chunk(sm, stage ^ 1, c + 1, kc, vc, t);
        copy_async_commit();
        copy_async_wait_all_but_one();
        __syncthreads();  // chunk c (and the queries) are in shared memory for every warp
        if (has_rows) attend_chunk(sm, stage, c, t, window, st);
        __syncthreads();  // its stage is free for chunk c + 2
    }
}

// Query i of the tile (row warp·16 + g + 8r) and where its features sit in [n, heads, hd] rows.
__device__ __forceinline__ int tile_query(const PrefillTile &t, int r) {
    return t.q0 + int(threadIdx.x / 32) * 16 + int(threadIdx.x % 32) / 4 + 8 * r;
}

template <int HD>
__device__ void store_output(const RowsState<HD> &st, const PrefillTile &t, int heads,
                             const float *sinks, float *out) {
    float sink = head_sink(sinks, t.head);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        int i = tile_query(t, r);
        if (i >= t.q0 + t.rows) continue;
        Normalizer z = with_sink(st.m[r], st.l[r], sink);
        float *o = out + (size_t(i) * heads + t.head) * HD + 2 * (threadIdx.x % 4);
#pragma unroll
        for (int nt = 0; nt < HD / 8; ++nt)
            *reinterpret_cast<float2 *>(o + 8 * nt) =
                make_float2(normalized(st.acc[nt][2 * r], z), normalized(st.acc[nt][2 * r + 1], z));
    }
}

// A split block's segment state at partial[query][head][slot]: m, l, then acc[HD].
template <int HD>
__device__ void store_partial(const RowsState<HD> &st, const PrefillTile &t, int heads,
                              int segments, int slot, float *partial) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        int i = tile_query(t, r);
        if (i >= t.q0 + t.rows) continue;
        float *p = partial + ((size_t(i) * heads + t.head) * segments + slot) * (HD + 2);
        if (threadIdx.x % 4 == 0) p[0] = st.m[r], p[1] = st.l[r];
        p += 2 + 2 * (threadIdx.x % 4);
#pragma unroll
        for (int nt = 0; nt < HD / 8; ++nt)
            *reinterpret_cast<float2 *>(p + 8 * nt) =
                make_float2(st.acc[nt][2 * r], st.acc[nt][2 * r + 1]);
    }
}

// Grid (heads, query tiles) when whole: a block folds the tile's segments in order and writes
// the output. Grid (heads, query tiles, segments) when split: block z writes the state of the
// tile's z-th segment (if the tile has one) for attention_prefill_combine_kernel.
template <int HD, bool kSplit>
__global__ void __launch_bounds__(kFlashThreads)
attention_prefill_flash_kernel(const float *q, int q_stride, const half *kc, const half *vc,
                               float *out, float *partial, int n, AttentionShape s,
                               const int *pos0, const float *sinks, int segments) {
    extern __shared__ uint4 smem[];
    allow_next_kernel();
    wait_for_previous_kernel();
    FlashSmem<HD> &sm = *reinterpret_cast<FlashSmem<HD> *>(smem);
    PrefillTile t = prefill_tile(n, s, pos0, blockIdx.x, blockIdx.y);
    int first_segment = t.first / kSegmentKeys, last_segment = t.last / kSegmentKeys;
    if (kSplit && first_segment + int(blockIdx.z) > last_segment) return;
    stage_queries(sm, q, q_stride, t);
    RowsState<HD> segment;
    if (kSplit) {
        attend_segment(sm, first_segment + blockIdx.z, kc, vc, t, s.window, segment);
        store_partial(segment, t, s.heads, segments, blockIdx.z, partial);
        return;
    }
    RowsState<HD> all;
    all.clear();
    for (int seg = first_segment; seg <= last_segment; ++seg) {
        attend_segment(sm, seg, kc, vc, t, s.window, segment);
        all.join_with(segment);
    }
    store_output(all, t, s.heads, sinks, out);
}

// Grid (heads, n), head_dim threads: query blockIdx.y's segment states folded in order, as the
// whole kernel folds them, then the sink and the division.
__global__ void attention_prefill_combine_kernel(const float *partial, float *out, int n,
                                                 AttentionShape s, const int *pos0,
                                                 const float *sinks, int segments) {
    allow_next_kernel();
    wait_for_previous_kernel();
    int head = blockIdx.x, i = blockIdx.y, d = threadIdx.x, hd = s.head_dim;
    PrefillTile t = prefill_tile(n, s, pos0, head, i / kTileRows);
    int count = t.last / kSegmentKeys - t.first / kSegmentKeys + 1;
    const float *p = partial + (size_t(i) * s.heads + head) * segments * (hd + 2);
    float m = -INFINITY, l = 0.0f, acc = 0.0f;
    for (int slot = 0; slot < count; ++slot, p += hd + 2) {
        Rescale x = rescale(m, p[0]);
        m = x.m;
        l = join(l, p[1], x);
        acc = join(acc, p[2 + d], x);
    }
    Normalizer z = with_sink(m, l, head_sink(sinks, head));
    out[(size_t(i) * s.heads + head) * hd + d] = normalized(acc, z);
}

// The most segments a tile's keys touch: all of the cache, or one window plus a tile's queries.
static int prefill_segments(const AttentionShape &s) {
    int whole = (s.ctx + kSegmentKeys - 1) / kSegmentKeys;
    int windowed = (s.window + kTileRows - 2) / kSegmentKeys + 2;
    return s.window > 0 ? std::min(whole, windowed) : whole;
}

static size_t split_floats(const AttentionShape &s, int n) {
    return size_t(n) * s.heads * prefill_segments(s) * (s.head_dim + 2);
}

size_t attention_prefill_partial_floats(const AttentionShape &s) {
    return std::min(split_floats(s, kSplitRows), kMaxPartialFloats);
}

// Shared memory past 48 KB must be allowed per kernel, once; a GPU with less per block than
// FlashSmem (sm_86 and sm_89 have 99 KB: head_dim 128 needs 102 KB) takes the scalar path.
template <int HD>
static bool flash_fits() {
    static bool fits = [] {
        size_t bytes = sizeof(FlashSmem<HD>);
        bool ok = cudaFuncSetAttribute(attention_prefill_flash_kernel<HD, false>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       bytes) == cudaSuccess &&
                  cudaFuncSetAttribute(attention_prefill_flash_kernel<HD, true>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       bytes) == cudaSuccess;
        cudaGetLastError();  // a refusal is an answer, not an error for the next call
        return ok;
    }();
    return fits;
}

static orcd_status scalar_prefill(const float *q, int q_stride, const half *kc, const half *vc,
                                  float *out, int n, const AttentionShape &s, const int *pos0,
                                  cudaStream_t stream, const float *sinks) {
    dim3 grid(s.heads, (n + kTileQueries - 1) / kTileQueries);
    attention_prefill_scalar_kernel<<<grid, kPrefillThreads, 0, stream>>>(q, q_stride, kc, vc, out,
                                                                          n, s, pos0, sinks);
    return check(cudaGetLastError(), "attention_prefill kernel launch");
}

// Split the keys when the whole grid would leave SMs idle and the partials of its tiles fit:
// decided per tile of queries, so that a prompt's rows take the same path whatever rows follow
// them in their last tile (decode.cu rounds a short prefill up to its graph's bucket).
template <int HD>
static orcd_status flash_prefill(const float *q, int q_stride, const half *kc, const half *vc,
                                 float *out, int n, const AttentionShape &s, const int *pos0,
                                 cudaStream_t stream, const float *sinks, float *partial,
                                 size_t partial_floats, bool overlap) {
    int tiles = (n + kTileRows - 1) / kTileRows, segments = prefill_segments(s), sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    bool split = partial && segments > 1 && s.heads * tiles < sms &&
                 split_floats(s, tiles * kTileRows) <= partial_floats;
    size_t smem = sizeof(FlashSmem<HD>);
    if (!flash_fits<HD>())
        return scalar_prefill(q, q_stride, kc, vc, out, n, s, pos0, stream, sinks);
    if (!split)
        return check(launch(attention_prefill_flash_kernel<HD, false>, dim3(s.heads, tiles),
                            kFlashThreads, smem, stream, overlap, q, q_stride, kc, vc, out,
                            nullptr, n, s, pos0, sinks, 0),
                     "attention_prefill kernel launch");
    ORCD_CUDA(launch(attention_prefill_flash_kernel<HD, true>, dim3(s.heads, tiles, segments),
                     kFlashThreads, smem, stream, overlap, q, q_stride, kc, vc, out, partial, n, s,
                     pos0, sinks, segments));
    return check(launch(attention_prefill_combine_kernel, dim3(s.heads, n), HD, 0, stream, overlap,
                        partial, out, n, s, pos0, sinks, segments),
                 "attention_prefill_combine kernel launch");
}

orcd_status attention_prefill(const float *q, int q_stride, const half *k_cache,
                              const half *v_cache, float *out, int n, const AttentionShape &s,
                              const int *pos0, cudaStream_t stream, const float *sinks,
                              float *partial, size_t partial_floats, bool overlap) {
#define ORCD_FLASH_PREFILL(HD)                                                                \
    case HD:                                                                                  \
        return flash_prefill<HD>(q, q_stride, k_cache, v_cache, out, n, s, pos0, stream, sinks, \
                                 partial, partial_floats, overlap)
    switch (s.head_dim) {
        ORCD_FLASH_PREFILL(16);
        ORCD_FLASH_PREFILL(32);
        ORCD_FLASH_PREFILL(48);
        ORCD_FLASH_PREFILL(64);
        ORCD_FLASH_PREFILL(80);
        ORCD_FLASH_PREFILL(96);
        ORCD_FLASH_PREFILL(112);
        ORCD_FLASH_PREFILL(128);
    }
#undef ORCD_FLASH_PREFILL
    return scalar_prefill(q, q_stride, k_cache, v_cache, out, n, s, pos0, stream, sinks);
}

}  // namespace orcd
