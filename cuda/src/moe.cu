// The mixture-of-experts layer (moe.cuh) on two paths; both start with the router (a block
// per logit, then a warp per token for top-k and softmax).
//  - decode (one token, quantized experts): the router's blocks also quantize xn to Q8_1;
//    one kernel over (row groups, slots) dots the same rows of gate and of up of the slot's
//    expert with it (warp by warp, as matvec's integer path) and writes swiglu_oai of each
//    pair, the last warp of every 32 values quantizing them to Q8_1; one kernel dots rows of
//    down with those, a warp per slot, and adds their weighted sum to x in slot order. Only
//    the chosen experts' rows are read, each once; no block re-reads an F32 vector.
//  - prefill (and float experts): the (token, slot) pairs grouped by expert (count, scan,
//    scatter, in pair order), then per expert a tensor-core matmul of its gathered rows for
//    gate and up (epilogue: biases, swiglu_oai), one for down (epilogue: bias), and a
//    per-token combine. Each expert's weights are read once per 64 of its tokens (mma.sync),
//    128 (wgmma).
// Expert ids are read on the device (capture-safe); every sum has a fixed order.
#include "copy_async.cuh"
#include "matmul.cuh"
#include "matmul_dense.cuh"
#include "matvec.cuh"
#include "moe.cuh"
#include "quant.cuh"
#include "reduce.cuh"
#include "wgmma.cuh"

namespace orcd {
namespace {

constexpr int kRouterThreads = 128;  // a block per logit: 2880 values are ~6 float4 a thread
constexpr int kGroupThreads = 1024;
constexpr int kMoeWarps = 4;
constexpr int kMinBlocks = 3;    // as matvec.cu: keeps every load of a step in flight
constexpr int kPairsPerWarp = 2;  // decode gate/up: 2 rows of gate + 2 of up per warp
constexpr int kDownRows = 2;      // decode down: rows per block, a warp per slot
constexpr int kMaxDecodeSlots = 8;  // decode down: experts used per token (else prefill's path)
constexpr int kMaxExperts = 1024;
constexpr int kMaxTokens = 65535;  // grid y of the router and the combine
constexpr float kSwigluAlpha = 1.702f, kSwigluLimit = 7.0f;

// gate·σ(α·gate)·(up + 1), gate clamped above and up both ways at the limit.
__device__ __forceinline__ float swiglu_oai(float gate, float up) {
    gate = fminf(gate, kSwigluLimit);
    up = fminf(fmaxf(up, -kSwigluLimit), kSwigluLimit);
    return gate / (1.0f + expf(-kSwigluAlpha * gate)) * (up + 1.0f);
}

// Q8_1 vectors in device memory: `count` of `cols` values, the int8 values of all, then the
// scales of all.
XQ8_1 q8_1_vectors(void *base, int cols, int count) {
    int8_t *q = static_cast<int8_t *>(base);
    return {q, base ? reinterpret_cast<block_q8_1_scale *>(q + size_t(cols) * count) : nullptr};
}

size_t q8_1_vectors_bytes(int cols, int count) {
    return size_t(count) * (size_t(cols) + size_t(cols) / 32 * sizeof(block_q8_1_scale));
}

__device__ __forceinline__ XQ8_1 q8_1_vector(XQ8_1 v, int cols, int i) {
    return {v.q + size_t(i) * cols, v.s + size_t(i) * (cols / 32)};
}

// The scratch of n tokens: the router's logits, each token's chosen experts and weights, the
// pairs grouped by expert, the hidden vector of each pair (in grouped order) and its down
// projection (in pair order t * used + slot). Decode's: xn and the `used` hidden vectors as
// Q8_1, and per 32 hidden values the count of those written (groups_done).
struct MoeScratch {
    float *logits;
    int *ids;
    float *weights;
    int *counts, *offsets, *order;
    float *hidden, *down;
    XQ8_1 xq, hq;
    int *groups_done;
};

MoeScratch carve(const MoeWeights &w, int n, void *base, size_t *bytes) {
    size_t pairs = size_t(n) * w.used, off = 0;
    auto take = [&](size_t size) {
        void *p = base ? static_cast<char *>(base) + off : nullptr;
        off += (size + 255) / 256 * 256;
        return p;
    };
    MoeScratch s;
    s.logits = static_cast<float *>(take(size_t(n) * w.experts * sizeof(float)));
    s.ids = static_cast<int *>(take(pairs * sizeof(int)));
    s.weights = static_cast<float *>(take(pairs * sizeof(float)));
    s.counts = static_cast<int *>(take(size_t(w.experts) * sizeof(int)));
    s.offsets = static_cast<int *>(take(size_t(w.experts) * sizeof(int)));
    s.order = static_cast<int *>(take(pairs * sizeof(int)));
    s.hidden = static_cast<float *>(take(pairs * w.ff * sizeof(float)));
    s.down = static_cast<float *>(take(pairs * w.d * sizeof(float)));
    s.xq = q8_1_vectors(take(q8_1_vectors_bytes(w.d, 1)), w.d, 1);
    s.hq = q8_1_vectors(take(q8_1_vectors_bytes(w.ff, w.used)), w.ff, w.used);
    s.groups_done = static_cast<int *>(take(size_t(w.used) * (w.ff / 32) * sizeof(int)));
    *bytes = off;
    return s;
}

// Block (e, t): the router logit of expert e for token t, a row of d split over the block.
// Decode (xq given, n = 1): the blocks also quantize xn to Q8_1 for the gate/up kernel.
__global__ void __launch_bounds__(kRouterThreads)
router_logits_kernel(const MoeWeights w, const float *__restrict__ xn, float *logits, XQ8_1 xq) {
    int e = blockIdx.x, t = blockIdx.y, warps = kRouterThreads / 32;
    if (xq.q)  // a warp per 32 values, over all the blocks: no block waits on the whole of xn
        for (int u = e * warps + threadIdx.x / 32; u < w.d / 32; u += gridDim.x * warps)
            quantize_unit(xn[32 * u + threadIdx.x % 32], xq, u);
    const float4 *x = reinterpret_cast<const float4 *>(xn + size_t(t) * w.d);
    const float4 *r = reinterpret_cast<const float4 *>(w.router_w + size_t(e) * w.d);
    float acc = 0.0f;
#pragma unroll 8  // every load of the row in flight at once
    for (int i = threadIdx.x; i < w.d / 4; i += blockDim.x) {
        float4 a = __ldg(r + i), b = __ldg(x + i);
        acc += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) logits[size_t(t) * w.experts + e] = acc + w.router_b[e];
}

// A warp per token: its `used` experts in rank order (a higher logit first, ties to the lower
// id), lane l holding experts l, l + 32, ...; then their weights, the softmax of the chosen
// logits alone. Decode: it also zeroes the gate/up kernel's groups_done counters.
__global__ void top_k_softmax_kernel(const float *logits, int n, int experts, int used, int *ids,
                                     float *weights, int *groups_done, int groups) {
    int thread = blockIdx.x * blockDim.x + threadIdx.x, t = thread / 32, lane = threadIdx.x % 32;
    for (int i = thread; i < groups; i += gridDim.x * blockDim.x) groups_done[i] = 0;
    if (t >= n) return;
    const float *l = logits + size_t(t) * experts;
    int *id = ids + size_t(t) * used;
    float *p = weights + size_t(t) * used;
    unsigned taken = 0;  // bit j: expert lane + 32 j is chosen (experts <= 1024)
    for (int k = 0; k < used; ++k) {
        float best = -INFINITY;
        int best_e = experts;  // none yet
        for (int j = 0, e = lane; e < experts; ++j, e += 32)
            if (!(taken >> j & 1u) && (best_e == experts || l[e] > best)) best = l[e], best_e = e;
        for (int o = 16; o; o >>= 1) {
            float ob = __shfl_xor_sync(0xFFFFFFFFu, best, o);
            int oe = __shfl_xor_sync(0xFFFFFFFFu, best_e, o);
            if (oe < experts && (best_e == experts || ob > best || (ob == best && oe < best_e)))
                best = ob, best_e = oe;
        }
        best_e = best_e < experts ? best_e : 0;  // only NaN logits leave no order
        if (best_e % 32 == lane) taken |= 1u << (best_e / 32);
        if (lane == 0) id[k] = best_e, p[k] = l[best_e];
    }
    if (lane) return;
    float top = p[0], sum = 0.0f;
    for (int k = 0; k < used; ++k) {
        p[k] = expf(p[k] - top);
        sum += p[k];
    }
    for (int k = 0; k < used; ++k) p[k] /= sum;
}

// The pairs p = t * used + slot grouped by expert: counts, exclusive offsets, and order (the
// pairs of expert 0, then 1, ..., each in increasing p). Block e counts the pairs of experts
// below e (its offset) and of e, then writes e's pairs in order, kGroupThreads at a time (a
// ballot per warp, the warps' counts scanned in shared memory): no atomics, the same order
// every run.
__global__ void __launch_bounds__(kGroupThreads)
group_by_expert_kernel(const int *__restrict__ ids, int pairs, int *counts, int *offsets,
                       int *order) {
    __shared__ int below[kGroupThreads / 32], mine[kGroupThreads / 32];
    int e = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int lt = 0, eq = 0;
    for (int p = threadIdx.x; p < pairs; p += kGroupThreads) {
        int id = ids[p];
        lt += id < e;
        eq += id == e;
    }
    lt = __reduce_add_sync(0xFFFFFFFFu, lt);
    eq = __reduce_add_sync(0xFFFFFFFFu, eq);
    if (lane == 0) below[warp] = lt, mine[warp] = eq;
    __syncthreads();
    int off = 0, count = 0;
    for (int w = 0; w < kGroupThreads / 32; ++w) off += below[w], count += mine[w];
    if (threadIdx.x == 0) counts[e] = count, offsets[e] = off;
    __syncthreads();  // every thread has read `mine`: it takes each chunk's warp counts
    for (int p0 = 0; p0 < pairs; p0 += kGroupThreads) {
        int p = p0 + threadIdx.x;
        bool hit = p < pairs && ids[p] == e;
        unsigned mask = __ballot_sync(0xFFFFFFFFu, hit);
        if (lane == 0) mine[warp] = __popc(mask);
        __syncthreads();
        int before = off;
        for (int w = 0; w < warp; ++w) before += mine[w];
        if (hit) order[before + __popc(mask & ((1u << lane) - 1))] = p;
        for (int w = warp; w < kGroupThreads / 32; ++w) before += mine[w];
        off = before;
        __syncthreads();  // `mine` read by every warp before the next chunk's counts
    }
}

// Decode: the warp that completes a group of 32 hidden values of a slot (counted in done,
// zeroed by the router) quantizes them to Q8_1 as quantize_block_q8_1 would, so the down
// kernel reads 40 bytes per 32 values instead of 128. Which warp is last changes no bit.
__device__ void quantize_group_if_last(const float *h, XQ8_1 hq, int *done, int unit0) {
    int lane = threadIdx.x % 32, group = unit0 / 32, last = 0;
    if (lane == 0) {
        __threadfence();  // h[unit0..] is visible before the count says so
        last = atomicAdd(done + group, kPairsPerWarp) == 32 - kPairsPerWarp;
    }
    if (!__shfl_sync(0xFFFFFFFFu, last, 0)) return;
    __threadfence();
    quantize_unit(__ldcg(h + 32 * group + lane), hq, group);  // through L2: other blocks wrote h
}

// Decode, gate and up: block (x, slot)'s warp w takes hidden units
// (x * kMoeWarps + w) * kPairsPerWarp.. of the slot's expert, their gate and up rows in one
// dot_rows (every load of xn's Q8_1 shared by the four rows), and writes swiglu_oai of each
// pair, in F32 and, per 32, as Q8_1.
template <class F>
__global__ void __launch_bounds__(kMoeWarps * 32, kMinBlocks)
gate_up_decode_kernel(const MoeWeights w, XQ8_1 xq, const int *ids, float *__restrict__ hidden,
                      XQ8_1 hq, int *groups_done) {
    int slot = blockIdx.y, e = ids[slot];
    int unit0 = (blockIdx.x * kMoeWarps + threadIdx.x / 32) * kPairsPerWarp;
    if (unit0 >= w.ff) return;
    size_t rb = row_bytes<F>(w.d), expert = rb * w.ff * e;
    const uint8_t *rows[2 * kPairsPerWarp];
    for (int r = 0; r < kPairsPerWarp; ++r) {
        size_t at = expert + rb * (unit0 + r);  // ff is a multiple of 32: every row exists
        rows[r] = static_cast<const uint8_t *>(w.gate) + at;
        rows[kPairsPerWarp + r] = static_cast<const uint8_t *>(w.up) + at;
    }
    float dot[2 * kPairsPerWarp];
    dot_rows<F, 2 * kPairsPerWarp>(rows, xq, w.d, dot);
    float *h = hidden + size_t(slot) * w.ff;
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < kPairsPerWarp; ++r) {
            size_t b = size_t(e) * w.ff + unit0 + r;
            h[unit0 + r] = swiglu_oai(dot[r] + w.gate_b[b], dot[kPairsPerWarp + r] + w.up_b[b]);
        }
    quantize_group_if_last(h, q8_1_vector(hq, w.ff, slot), groups_done + slot * (w.ff / 32),
                           unit0);
}

// Decode, down: block x takes rows x * kDownRows.., warp s of it slot s (so `used` warps, at
// most kMaxDecodeSlots): the slot's weighted dot with its Q8_1 hidden vector; then the slots'
// results are added to x in slot order.
template <class F>
__global__ void __launch_bounds__(kMaxDecodeSlots * 32)
down_decode_kernel(const MoeWeights w, XQ8_1 hq, const int *ids, const float *weights,
                   float *__restrict__ x) {
    __shared__ float part[kMaxDecodeSlots][kDownRows];
    int slot = threadIdx.x / 32, row0 = blockIdx.x * kDownRows, e = ids[slot];
    size_t rb = row_bytes<F>(w.ff);
    const uint8_t *rows[kDownRows];
    for (int r = 0; r < kDownRows; ++r)  // d is a multiple of 32: every row exists
        rows[r] = static_cast<const uint8_t *>(w.down) + rb * (size_t(e) * w.d + row0 + r);
    float dot[kDownRows];
    dot_rows<F, kDownRows>(rows, q8_1_vector(hq, w.ff, slot), w.ff, dot);
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < kDownRows; ++r)
            part[slot][r] = weights[slot] * (dot[r] + w.down_b[size_t(e) * w.d + row0 + r]);
    __syncthreads();
    if (threadIdx.x >= kDownRows) return;
    float sum = 0.0f;
    for (int s = 0; s < w.used; ++s) sum += part[s][threadIdx.x];
    x[row0 + threadIdx.x] += sum;
}

// Prefill: the grouped matmul of one projection. Block (x, y, e) multiplies tokens
// y * kTileN.. of expert e's group by rows x * kTileRows.. of its M matrices: M = 2 (gate and
// up of xn's rows, into hidden in grouped order, swiglu_oai'd) or M = 1 (down of hidden, into
// down in pair order). Blocks past the group's count exit at once.
struct ExpertMatmul {
    const uint8_t *w[2];
    const float *bias[2];
    int rows, cols, used;
    const float *x;
    float *out;
    const int *counts, *offsets, *order;
};

template <int M>
struct ExpertSmem {
    const float *x_row[kTileN];  // the tile's gathered rows of x; null past the group
    union {
        struct {
            HalfTile x;
            HalfTile w[M];
        } t;
        FloatTile y[M];
    };
};

template <class F, int M>
__device__ void load_expert_tiles(ExpertSmem<M> &s, const uint8_t *const (&w)[M], int row0,
                                  int rows, int cols, int k0) {
#pragma unroll
    for (int run = threadIdx.x; run < kTileN * kRunsPerRow; run += kMatmulThreads) {
        int r = run / kRunsPerRow, j = run % kRunsPerRow * kRun, k = k0 + j;
        float v[kRun];
        bool in_k = k < cols;
        if (in_k && s.x_row[r]) load_x_run(s.x_row[r] + k, v);
        else for (float &e : v) e = 0.0f;
        store_run(&s.t.x[r][j], v);
        for (int m = 0; m < M; ++m) {
            if (in_k && row0 + r < rows) dequant16<F>(w[m] + row_bytes<F>(cols) * (row0 + r), k, v);
            else for (float &e : v) e = 0.0f;
            store_run(&s.t.w[m][r][j], v);
        }
    }
}

template <class F, int M>
__global__ void __launch_bounds__(kMatmulThreads) expert_matmul_kernel(const ExpertMatmul op) {
    __shared__ __align__(32) ExpertSmem<M> s;
    int e = blockIdx.z, count = op.counts[e], tok0 = blockIdx.y * kTileN;
    if (tok0 >= count) return;
    int off = op.offsets[e], row0 = blockIdx.x * kTileRows;
    if (threadIdx.x < kTileN) {
        int i = tok0 + threadIdx.x;
        int x_row = i >= count ? -1 : M == 2 ? op.order[off + i] / op.used : off + i;
        s.x_row[threadIdx.x] = x_row < 0 ? nullptr : op.x + size_t(x_row) * op.cols;
    }
    __syncthreads();
    const uint8_t *w[M];
    for (int m = 0; m < M; ++m) w[m] = op.w[m] + row_bytes<F>(op.cols) * op.rows * e;
    int warp = threadIdx.x / 32, wt = warp_tokens(warp), wr = warp_rows(warp);
    Accumulator acc[M][2][2];
    for (auto &a : acc) zero(a);
    for (int k0 = 0; k0 < op.cols; k0 += kTileK) {
        load_expert_tiles<F, M>(s, w, row0, op.rows, op.cols, k0);
        __syncthreads();
        for (int m = 0; m < M; ++m) mma_step(s.t.x, s.t.w[m], wt, wr, acc[m]);
        __syncthreads();
    }
    for (int m = 0; m < M; ++m) store_accumulators(s.y[m], wt, wr, acc[m]);
    __syncthreads();
    for (int i = threadIdx.x; i < kTileN * kTileRows; i += kMatmulThreads) {
        int t = i / kTileRows, row = row0 + i % kTileRows, r = i % kTileRows;
        if (tok0 + t >= count || row >= op.rows) continue;
        int pos = off + tok0 + t;
        size_t b = size_t(e) * op.rows + row;
        if constexpr (M == 2)
            op.out[size_t(pos) * op.rows + row] =
                swiglu_oai(s.y[0][t][r] + op.bias[0][b], s.y[1][t][r] + op.bias[1][b]);
        else
            op.out[size_t(op.order[pos]) * op.rows + row] = s.y[0][t][r] + op.bias[0][b];
    }
}

// x[t] += sum over slots, in slot order, of weight * down (bias included).
__global__ void combine_kernel(const float *__restrict__ down, const float *__restrict__ weights,
                               int used, int d, float *__restrict__ x) {
    int t = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= d) return;
    float acc = 0.0f;
    for (int s = 0; s < used; ++s)
        acc += weights[size_t(t) * used + s] * down[(size_t(t) * used + s) * d + i];
    x[size_t(t) * d + i] += acc;
}

// ---- prefill on Hopper's warpgroup MMA (sm_90a) ------------------------------------------
// The same grouping, products and combine, each product a block of 128 of the group's tokens
// x 128 rows: gate and up of 64 hidden units (warpgroup 0 gate, 1 up; swiglu_oai'd in the
// epilogue), or 128 rows of down (64 a warpgroup). A step of 64 columns stages the weights
// dequantized to F16 by every thread (the next step's while the tensor cores multiply this
// one, their lines two steps on asked into L1 meanwhile) and the tokens' F16 rows by
// cp.async, both in the 128-byte swizzle wgmma reads. The tokens are gathered in grouped
// order and rounded to F16 once (into the down slot, unused until the down product), and the
// hidden vectors leave gate/up as F16 (in the hidden slot): the halves the mma.sync path
// rounds the same values to. H200, orcd bench kernels --ops moe (MXFP4, 512 tokens): 64 tokens
// a block and no L1 prefetch 1,324 us, 128 tokens 1,141, 128 and the prefetch 1,049 (one or
// three steps on: 1,113, 1,047); mma.sync 1,533. A block's time is the dequantization's
// instructions and loads (ncu: half the cycles without an eligible warp), not the tensor cores.
constexpr int kXpTokens = 128, kXpRows = 128, kXpK = 64, kXpThreads = 256;
constexpr int kXpStages = 3, kXpAhead = kXpStages - 1;  // steps whose tokens load ahead
constexpr int kXpPrefetch = 2;  // steps ahead whose weights are asked into L1
constexpr int kXpRuns = kXpRows * kXpK / kRun / kXpThreads;  // a thread's weight runs a step
struct XpStage {
    uint8_t a[kXpRows * 128], b[kXpTokens * 128];  // tile rows of kXpK halves, swizzled
};
constexpr size_t kXpRing = kXpStages * sizeof(XpStage), kXpSmem = 1024 + kXpRing;
static_assert(kXpAhead >= 1 && kXpPrefetch >= 1 && kXpRuns == 2 &&
                  kXpThreads / (kXpK / kRun) == 64,
              "run i of a thread is tile row 64 i + thread / 4");
static_assert(sizeof(XpStage) % 1024 == 0, "aligned atoms");
static_assert(kXpTokens * (kXpRows + 4) * sizeof(float) <= kXpRing &&
                  sizeof(float) * 128 * kXpTokens / 2 + kXpTokens * (kXpK + 8) * 2 <= kXpRing,
              "the epilogue's tiles fit in the ring");

struct ExpertWgmma {
    const uint8_t *w[2];
    const float *bias[2];
    int rows, cols;
    const __half *x16;  // grouped rows of dense_ld(cols) halves
    float *out;         // down: pair order, rows of `rows` floats
    __half *out16;      // gate/up: grouped rows of dense_ld(rows) halves
    const int *counts, *offsets, *order;
};

// xn's row of each pair, in grouped order, as F16 rows of dense_ld(cols) (zero past cols): a
// thread a run of kRun, rounded as matmul_dense.cu's dense_tokens_kernel rounds X.
__global__ void gather_halves_kernel(const float *__restrict__ xn, const int *__restrict__ order,
                                     int used, int pairs, int cols, __half *__restrict__ x16) {
    int ld = dense_ld(cols), runs = ld / kRun;
    size_t run = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (run >= size_t(pairs) * runs) return;
    int pos = int(run / runs), k = int(run % runs) * kRun;
    float v[kRun];
    if (k < cols) load_x_run(xn + size_t(order[pos] / used) * cols + k, v);
    else for (float &e : v) e = 0.0f;
    store_run(x16 + size_t(pos) * ld + k, v);
}

// Block (x, y, e): tokens x * kXpTokens.. of expert e's group, weight rows y * (128 / M)..
// of its M matrices. Blocks past the group's count exit at once.
template <class F, int M>
__global__ void __launch_bounds__(kXpThreads, 2) expert_wgmma_kernel(const ExpertWgmma op) {
#if ORCD_HAS_WGMMA
    extern __shared__ __align__(128) uint8_t smem_raw[];
    int e = blockIdx.z, count = op.counts[e], tok0 = blockIdx.x * kXpTokens;
    if (tok0 >= count) return;
    uint32_t raw = uint32_t(__cvta_generic_to_shared(smem_raw)), pad = (1024 - raw % 1024) % 1024;
    uint32_t ring = raw + pad;  // the swizzle's atoms of 8 rows lie on 1,024-byte boundaries
    int off = op.offsets[e], row0 = blockIdx.y * (kXpRows / M), group = threadIdx.x / 128;
    int ld = dense_ld(op.cols), steps = ld / kXpK;

    // This thread's weight runs: run i is tile row r (M = 2: gate rows 0-63, up rows 64-127 of
    // the same units), columns j.. of the step; a row past the matrix stages zeros.
    const uint8_t *a_src[kXpRuns];
    uint32_t a_dst[kXpRuns];
    int a_k[kXpRuns];
#pragma unroll
    for (int i = 0; i < kXpRuns; ++i) {
        int r = threadIdx.x / (kXpK / kRun) + 64 * i, j = threadIdx.x % (kXpK / kRun);
        int row = row0 + (M == 2 ? r % 64 : r);  // M = 2: run i is in matrix i
        a_src[i] = row < op.rows
                       ? op.w[M == 2 ? i : 0] + row_bytes<F>(op.cols) * (size_t(op.rows) * e + row)
                       : nullptr;
        a_dst[i] = swizzled_chunk(r, 2 * j);  // its second chunk: swizzled_chunk(r, 2 j + 1)
        a_k[i] = j * kRun;
    }
    // This thread's token copies: chunk c of tile rows t0 and t0 + 32.
    int t0 = threadIdx.x / 8, c = threadIdx.x % 8;
    const __half *b_src = op.x16 + size_t(off + tok0 + t0) * ld + c * 8;
    auto load_tokens = [&](int step) {
        uint32_t at = ring + uint32_t(step % kXpStages * sizeof(XpStage)) + offsetof(XpStage, b);
#pragma unroll
        for (int i = 0; i < kXpTokens / 32; ++i) {
            bool in = tok0 + t0 + 32 * i < count;
            copy16(at + swizzled_chunk(t0 + 32 * i, c),
                   in ? b_src + size_t(32 * i) * ld + step * kXpK : op.x16, in);
        }
    };
    __half2 h[kXpRuns][kRun / 2];
    auto dequant_weights = [&](int step) {
#pragma unroll
        for (int i = 0; i < kXpRuns; ++i) {
            int k = step * kXpK + a_k[i];
            float v[kRun];
            if (a_src[i] && k < op.cols) dequant16<F>(a_src[i], k, v);
            else for (float &x : v) x = 0.0f;
            to_half(h[i], v);
        }
    };
    auto store_weights = [&](int step) {
        uint32_t at = ring + uint32_t(step % kXpStages * sizeof(XpStage)) + offsetof(XpStage, a);
#pragma unroll
        for (int i = 0; i < kXpRuns; ++i) {
            const uint4 *q = reinterpret_cast<const uint4 *>(h[i]);
            uint32_t second = a_dst[i] ^ 16u;  // chunk 2 j + 1: the swizzle flips bit 4 alike
            asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};" ::"r"(at + a_dst[i]),
                         "r"(q[0].x), "r"(q[0].y), "r"(q[0].z), "r"(q[0].w) : "memory");
            asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};" ::"r"(at + second),
                         "r"(q[1].x), "r"(q[1].y), "r"(q[1].z), "r"(q[1].w) : "memory");
        }
    };

    float acc[kXpTokens / 2];
#pragma unroll
    for (float &a : acc) a = 0.0f;
#pragma unroll
    for (int s = 0; s < kXpAhead; ++s) {
        if (s < steps) load_tokens(s);
        copies_commit();
    }
    dequant_weights(0);
    store_weights(0);
    for (int step = 0; step < steps; ++step) {
        copies_wait<kXpAhead - 1>();
        shared_to_async_proxy();  // this thread's stores and copies, seen by wgmma's reads
        // Every weight and token of this step is in, and every product of the step before is
        // done (each group waited for its own): that stage takes the tokens kXpAhead on.
        __syncthreads();
        if (step + kXpAhead < steps) load_tokens(step + kXpAhead);
        copies_commit();
        uint32_t at = ring + uint32_t(step % kXpStages * sizeof(XpStage));
        uint64_t a = swizzled_tile(at + offsetof(XpStage, a) + 64 * 128 * group);
        uint64_t b = swizzled_tile(at + offsetof(XpStage, b));
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kXpK / 16; ++k)  // 16 columns: 32 bytes on in the swizzle
            wgmma_m64k16<kXpTokens>(acc, a + 2 * k, b + 2 * k, 1);
        wgmma_commit();
        if (step + kXpPrefetch < steps)  // lines the dequantization two steps on reads
#pragma unroll
            for (int i = 0; i < kXpRuns; ++i) {
                int k = (step + kXpPrefetch) * kXpK + a_k[i];
                if (a_src[i] && k < op.cols)
                    asm volatile("prefetch.global.L1 [%0];" ::"l"(
                        a_src[i] + row_bytes<F>(k)));
            }
        if (step + 1 < steps) {  // the next step's weights while the tensor cores run
            dequant_weights(step + 1);
            store_weights(step + 1);
        }
        wgmma_wait<0>();
    }
    hold(acc);
    copies_wait<0>();
    __syncthreads();  // every stage read: the epilogue's tiles take their place

    // acc[4 j + q]: tile row 64 group + 16 (warp % 4) + lane / 4 + 8 (q / 2), token
    // 8 j + 2 (lane % 4) + q % 2 (wgmma_m64k16).
    int lane = threadIdx.x % 32, r_lane = 16 * (threadIdx.x / 32 % 4) + lane / 4;
    uint8_t *tile = smem_raw + pad;
    if constexpr (M == 2) {
        float(*up)[128] = reinterpret_cast<float(*)[128]>(tile);  // [acc index][thread]
        __half(*hs)[kXpK + 8] =
            reinterpret_cast<__half(*)[kXpK + 8]>(tile + sizeof(float) * 128 * kXpTokens / 2);
        if (group == 1)
#pragma unroll
            for (int i = 0; i < kXpTokens / 2; ++i) up[i][threadIdx.x - 128] = acc[i];
        __syncthreads();
        if (group == 0)
#pragma unroll
            for (int i = 0; i < kXpTokens / 2; ++i) {
                int u = r_lane + 8 * (i % 4 / 2), row = row0 + u;
                int t = 8 * (i / 4) + 2 * (lane % 4) + i % 2;
                float v = 0.0f;  // units past ff: the zeros the down product's columns expect
                if (row < op.rows) {
                    size_t b = size_t(e) * op.rows + row;
                    v = swiglu_oai(acc[i] + op.bias[0][b], up[i][threadIdx.x] + op.bias[1][b]);
                }
                hs[t][u] = __float2half_rn(v);
            }
        __syncthreads();
        int ldo = dense_ld(op.rows);
        for (int i = threadIdx.x; i < kXpTokens * 8; i += kXpThreads) {
            int t = i / 8, chunk = i % 8;
            if (tok0 + t < count)
                *reinterpret_cast<uint4 *>(op.out16 + size_t(off + tok0 + t) * ldo + row0 +
                                           8 * chunk) =
                    *reinterpret_cast<const uint4 *>(&hs[t][8 * chunk]);
        }
    } else {
        float(*out)[kXpRows + 4] = reinterpret_cast<float(*)[kXpRows + 4]>(tile);
#pragma unroll
        for (int i = 0; i < kXpTokens / 2; ++i)
            out[8 * (i / 4) + 2 * (lane % 4) + i % 2][64 * group + r_lane + 8 * (i % 4 / 2)] =
                acc[i];
        __syncthreads();
        for (int i = threadIdx.x; i < kXpTokens * kXpRows; i += kXpThreads) {
            int t = i / kXpRows, r = i % kXpRows, row = row0 + r;
            if (tok0 + t >= count || row >= op.rows) continue;
            op.out[size_t(op.order[off + tok0 + t]) * op.rows + row] =
                out[t][r] + op.bias[0][size_t(e) * op.rows + row];
        }
    }
#else
    (void)op;
#endif
}

orcd_status check_moe(const MoeWeights &w, int n) {
    if (!w.router_w || !w.router_b || !w.gate || !w.up || !w.down || !w.gate_b || !w.up_b ||
        !w.down_b)
        return fail(ORCD_ERR_INVALID, "moe: a weight or bias pointer is null");
    if (w.experts < 1 || w.experts > kMaxExperts || w.used < 1 || w.used > w.experts)
        return fail(ORCD_ERR_INVALID, "moe: %d of %d experts (1 <= used <= experts <= %d)",
                    w.used, w.experts, kMaxExperts);
    if (w.d <= 0 || w.ff <= 0 || w.d % 32 || w.ff % 32 || n < 0 || n > kMaxTokens)
        return fail(ORCD_ERR_INVALID, "moe: d %d and ff %d must be positive multiples of 32, "
                    "%d tokens at most %d", w.d, w.ff, n, kMaxTokens);
    ORCD_TRY(with_format(w.gate_up_type, [&](auto f) {
        return check_row<decltype(f)>(w.d, "moe gate/up");
    }));
    return with_format(w.down_type, [&](auto f) {
        return check_row<decltype(f)>(w.ff, "moe down");
    });
}

// Decode takes the integer path when both formats have an integer dot.
bool decode_path(const MoeWeights &w, int n) {
    bool integer = n == 1 && w.used <= kMaxDecodeSlots;
    for (int type : {w.gate_up_type, w.down_type})
        with_format(type, [&](auto f) {
            integer = integer && decltype(f)::integer_dot;
            return ORCD_OK;
        });
    return integer;
}

orcd_status route(const MoeWeights &w, const float *xn, int n, bool decode, const MoeScratch &s,
                  cudaStream_t stream) {
    XQ8_1 xq = decode ? s.xq : XQ8_1{nullptr, nullptr};
    dim3 grid(unsigned(w.experts), unsigned(n));
    router_logits_kernel<<<grid, kRouterThreads, 0, stream>>>(w, xn, s.logits, xq);
    ORCD_TRY(check(cudaGetLastError(), "moe router kernel launch"));
    int groups = decode ? w.used * (w.ff / 32) : 0;
    top_k_softmax_kernel<<<unsigned((n + 3) / 4), 128, 0, stream>>>(
        s.logits, n, w.experts, w.used, s.ids, s.weights, s.groups_done, groups);
    return check(cudaGetLastError(), "moe top-k kernel launch");
}

orcd_status moe_decode(const MoeWeights &w, float *x, const MoeScratch &s, cudaStream_t stream) {
    ORCD_TRY(with_format(w.gate_up_type, [&](auto f) {
        using F = decltype(f);
        if constexpr (F::integer_dot) {
            int per_block = kMoeWarps * kPairsPerWarp;
            dim3 grid(unsigned((w.ff + per_block - 1) / per_block), unsigned(w.used));
            gate_up_decode_kernel<F><<<grid, kMoeWarps * 32, 0, stream>>>(
                w, s.xq, s.ids, s.hidden, s.hq, s.groups_done);
        }
        return check(cudaGetLastError(), "moe gate/up decode kernel launch");
    }));
    return with_format(w.down_type, [&](auto f) {
        using F = decltype(f);
        if constexpr (F::integer_dot) {
            unsigned blocks = unsigned(w.d / kDownRows);
            down_decode_kernel<F><<<blocks, w.used * 32, 0, stream>>>(w, s.hq, s.ids,
                                                                      s.weights, x);
        }
        return check(cudaGetLastError(), "moe down decode kernel launch");
    });
}

template <int M>
orcd_status expert_matmul(int type, const ExpertMatmul &op, int n, int experts,
                          cudaStream_t stream) {
    return with_format(type, [&](auto f) {
        dim3 grid(unsigned((op.rows + kTileRows - 1) / kTileRows),
                  unsigned((n + kTileN - 1) / kTileN), unsigned(experts));
        expert_matmul_kernel<decltype(f), M><<<grid, kMatmulThreads, 0, stream>>>(op);
        return check(cudaGetLastError(), "moe expert matmul kernel launch");
    });
}

// The products on mma.sync (matmul.cuh's 64 x 64 tiles, dequantized as they load).
orcd_status moe_prefill_mma(const MoeWeights &w, const float *xn, int n, const MoeScratch &s,
                            cudaStream_t stream) {
    ExpertMatmul gate_up{{static_cast<const uint8_t *>(w.gate), static_cast<const uint8_t *>(w.up)},
                         {w.gate_b, w.up_b}, w.ff, w.d, w.used, xn, s.hidden,
                         s.counts, s.offsets, s.order};
    ORCD_TRY(expert_matmul<2>(w.gate_up_type, gate_up, n, w.experts, stream));
    ExpertMatmul down{{static_cast<const uint8_t *>(w.down), nullptr}, {w.down_b, nullptr},
                      w.d, w.ff, w.used, s.hidden, s.down, s.counts, s.offsets, s.order};
    return expert_matmul<1>(w.down_type, down, n, w.experts, stream);
}

template <int M>
orcd_status expert_wgmma(int type, const ExpertWgmma &op, int n, int experts,
                         cudaStream_t stream) {
    return with_format(type, [&](auto f) {
        auto kernel = expert_wgmma_kernel<decltype(f), M>;
        static const cudaError_t allowed =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 int(kXpSmem));
        ORCD_CUDA(allowed);
        dim3 grid(unsigned((n + kXpTokens - 1) / kXpTokens),
                  unsigned((op.rows + kXpRows / M - 1) / (kXpRows / M)), unsigned(experts));
        kernel<<<grid, kXpThreads, kXpSmem, stream>>>(op);
        return check(cudaGetLastError(), "moe expert wgmma kernel launch");
    });
}

// moe_prefill on wgmma: the gathered F16 tokens in the down slot, the F16 hidden vectors in
// the hidden slot (both fit: dense_ld(cols) <= 2 cols).
orcd_status moe_prefill_wgmma(const MoeWeights &w, const float *xn, int n, const MoeScratch &s,
                              cudaStream_t stream) {
    int pairs = n * w.used;
    __half *x16 = reinterpret_cast<__half *>(s.down), *h16 = reinterpret_cast<__half *>(s.hidden);
    size_t runs = size_t(pairs) * (dense_ld(w.d) / kRun);
    gather_halves_kernel<<<unsigned((runs + 255) / 256), 256, 0, stream>>>(
        xn, s.order, w.used, pairs, w.d, x16);
    ORCD_TRY(check(cudaGetLastError(), "moe gather kernel launch"));
    ExpertWgmma gate_up{{static_cast<const uint8_t *>(w.gate), static_cast<const uint8_t *>(w.up)},
                        {w.gate_b, w.up_b}, w.ff, w.d, x16, nullptr, h16,
                        s.counts, s.offsets, s.order};
    ORCD_TRY(expert_wgmma<2>(w.gate_up_type, gate_up, n, w.experts, stream));
    ExpertWgmma down{{static_cast<const uint8_t *>(w.down), nullptr}, {w.down_b, nullptr},
                     w.d, w.ff, h16, s.down, nullptr, s.counts, s.offsets, s.order};
    return expert_wgmma<1>(w.down_type, down, n, w.experts, stream);
}

orcd_status moe_prefill(const MoeWeights &w, const float *xn, float *x, int n,
                        const MoeScratch &s, cudaStream_t stream) {
    int pairs = n * w.used;
    group_by_expert_kernel<<<unsigned(w.experts), kGroupThreads, 0, stream>>>(
        s.ids, pairs, s.counts, s.offsets, s.order);
    ORCD_TRY(check(cudaGetLastError(), "moe grouping kernel launch"));
    ORCD_TRY(w.wgmma ? moe_prefill_wgmma(w, xn, n, s, stream)
                     : moe_prefill_mma(w, xn, n, s, stream));
    dim3 grid(unsigned((w.d + 255) / 256), unsigned(n));
    combine_kernel<<<grid, 256, 0, stream>>>(s.down, s.weights, w.used, w.d, x);
    return check(cudaGetLastError(), "moe combine kernel launch");
}

}  // namespace

size_t moe_scratch_bytes(const MoeWeights &w, int n) {
    size_t bytes = 0;
    carve(w, n, nullptr, &bytes);
    return bytes;
}

orcd_status moe(const MoeWeights &w, const float *xn, float *x, int n, void *scratch,
                cudaStream_t stream) {
    ORCD_TRY(check_moe(w, n));
    if (n == 0) return ORCD_OK;
    if (!xn || !x || !scratch) return fail(ORCD_ERR_INVALID, "moe: xn, x or scratch is null");
    size_t bytes = 0;
    MoeScratch s = carve(w, n, scratch, &bytes);
    bool decode = decode_path(w, n);
    ORCD_TRY(route(w, xn, n, decode, s, stream));
    if (decode) return moe_decode(w, x, s, stream);
    return moe_prefill(w, xn, x, n, s, stream);
}

}  // namespace orcd
