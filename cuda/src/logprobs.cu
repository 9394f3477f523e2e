// Log-softmax of raw logits at chosen ids, and each row's top ids, in two passes: a block per
// slice of kLogprobSlice logits (its max, its sum of exp(l - max), its own top_n), then a
// block per row merging its slices: log p(i) = l_i - (M + log Σ_s sum_s · exp(max_s - M)).
// Every reduction is in a fixed order, so the same logits give the same bits.
#include <cfloat>
#include <climits>
#include "common.cuh"
#include "logprobs.cuh"
#include "reduce.cuh"

namespace orcd {

namespace {

constexpr int kThreads = 256;

struct Best {
    float v;
    int i;
};

// The order of the top list: larger value first, equal values lower id first.
__device__ __forceinline__ bool better(float v, int i, const Best &b) {
    return v > b.v || (v == b.v && i < b.i);
}

__device__ Best warp_best(Best b) {
    for (int o = 16; o > 0; o /= 2) {
        Best other{__shfl_xor_sync(0xFFFFFFFFu, b.v, o), __shfl_xor_sync(0xFFFFFFFFu, b.i, o)};
        if (better(other.v, other.i, b)) b = other;
    }
    return b;
}

// Every thread gets the block's best.
__device__ Best block_best(Best b) {
    __shared__ float values[32];
    __shared__ int ids[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    b = warp_best(b);
    __syncthreads();  // the arrays may still be read by the previous call
    if (lane == 0) values[warp] = b.v, ids[warp] = b.i;
    __syncthreads();
    b = lane < warps ? Best{values[lane], ids[lane]} : Best{-INFINITY, INT_MAX};
    return warp_best(b);
}

__global__ void slice_kernel(const float *logits, int vocab, int slices, int top_n,
                             float *slice_max, float *slice_sum, float *top_values,
                             int32_t *top_ids) {
    __shared__ float v[kLogprobSlice];
    const float *row = logits + size_t(blockIdx.y) * vocab;
    int begin = blockIdx.x * kLogprobSlice, n = min(kLogprobSlice, vocab - begin);
    float m = -FLT_MAX;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        v[i] = row[begin + i];
        m = fmaxf(m, v[i]);
    }
    m = block_max(m);
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(v[i] - m);
    s = block_sum(s);
    int out = blockIdx.y * slices + blockIdx.x;
    if (threadIdx.x == 0) slice_max[out] = m, slice_sum[out] = s;
    for (int k = 0; k < top_n; ++k) {
        Best b{-INFINITY, INT_MAX};
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            if (better(v[i], i, b)) b = Best{v[i], i};
        b = block_best(b);
        if (threadIdx.x == 0) {
            top_values[out * ORCD_MAX_TOP_LOGPROBS + k] = b.v;
            top_ids[out * ORCD_MAX_TOP_LOGPROBS + k] = b.i < n ? begin + b.i : 0;
            if (b.i < n) v[b.i] = -INFINITY;  // taken: a slice shorter than top_n repeats -inf
        }
        __syncthreads();
    }
}

__global__ void merge_kernel(const float *logits, int vocab, int slices, int top_n,
                             const float *slice_max, const float *slice_sum,
                             const float *top_values, const int32_t *top_ids,
                             const int32_t *ids, orcd_logprob *records) {
    extern __shared__ float candidates[];  // slices * top_n values, then their ids
    int row = blockIdx.x, count = slices * top_n;
    const float *mx = slice_max + row * slices, *sm = slice_sum + row * slices;
    float m = -FLT_MAX;
    for (int j = threadIdx.x; j < slices; j += blockDim.x) m = fmaxf(m, mx[j]);
    m = block_max(m);
    float s = 0.0f;
    for (int j = threadIdx.x; j < slices; j += blockDim.x) s += sm[j] * expf(mx[j] - m);
    float lse = m + logf(block_sum(s));
    orcd_logprob &r = records[row];
    if (threadIdx.x == 0) {
        int32_t id = ids[row];
        r.token = id;
        r.logprob = logits[size_t(row) * vocab + id] - lse;
    }
    float *cv = candidates;
    int *ci = reinterpret_cast<int *>(candidates + count);
    for (int j = threadIdx.x; j < count; j += blockDim.x) {
        int at = (row * slices + j / top_n) * ORCD_MAX_TOP_LOGPROBS + j % top_n;
        cv[j] = top_values[at];
        ci[j] = top_ids[at];
    }
    __syncthreads();
    for (int k = 0; k < top_n; ++k) {
        Best b{-INFINITY, INT_MAX};
        for (int j = threadIdx.x; j < count; j += blockDim.x)
            if (better(cv[j], ci[j], b)) b = Best{cv[j], ci[j]};
        b = block_best(b);
        if (threadIdx.x == 0) r.top_ids[k] = b.i, r.top_logprobs[k] = b.v - lse;
        for (int j = threadIdx.x; j < count; j += blockDim.x)
            if (ci[j] == b.i) cv[j] = -INFINITY;
        __syncthreads();
    }
}

int slices_of(int vocab) { return (vocab + kLogprobSlice - 1) / kLogprobSlice; }

}  // namespace

size_t logprob_scratch_bytes(int vocab, int rows) {
    size_t per_slice = 2 * sizeof(float) + ORCD_MAX_TOP_LOGPROBS * (sizeof(float) + sizeof(int32_t));
    return size_t(rows) * (slices_of(vocab) * per_slice + sizeof(orcd_logprob));
}

orcd_status logprob_scratch_alloc(Allocator &alloc, int vocab, int rows, LogprobScratch *s) {
    s->vocab = vocab;
    s->rows = rows;
    s->slices = slices_of(vocab);
    size_t n = size_t(rows) * s->slices;
    ORCD_TRY(alloc.alloc(&s->slice_max, n, "logprob slice maxima"));
    ORCD_TRY(alloc.alloc(&s->slice_sum, n, "logprob slice sums"));
    ORCD_TRY(alloc.alloc(&s->top_values, n * ORCD_MAX_TOP_LOGPROBS, "logprob slice top values"));
    ORCD_TRY(alloc.alloc(&s->top_ids, n * ORCD_MAX_TOP_LOGPROBS, "logprob slice top ids"));
    return alloc.alloc(&s->records, rows, "logprob records");
}

orcd_status token_logprobs(const LogprobScratch &s, const float *logits, int rows,
                           const int32_t *ids, int top_n, cudaStream_t stream) {
    if (rows < 1 || rows > s.rows || top_n < 0 || top_n > ORCD_MAX_TOP_LOGPROBS || top_n > s.vocab)
        return fail(ORCD_ERR_INVALID, "logprobs of %d rows (scratch for %d), top %d of %d",
                    rows, s.rows, top_n, s.vocab);
    size_t shared = size_t(s.slices) * top_n * (sizeof(float) + sizeof(int));
    if (shared > 48 * 1024)
        return fail(ORCD_ERR_INVALID, "a vocabulary of %d is too large for the logprob merge", s.vocab);
    slice_kernel<<<dim3(s.slices, rows), kThreads, 0, stream>>>(
        logits, s.vocab, s.slices, top_n, s.slice_max, s.slice_sum, s.top_values, s.top_ids);
    ORCD_CUDA(cudaGetLastError());
    merge_kernel<<<rows, kThreads, shared, stream>>>(logits, s.vocab, s.slices, top_n, s.slice_max,
                                                     s.slice_sum, s.top_values, s.top_ids, ids,
                                                     s.records);
    return check(cudaGetLastError(), "logprob kernels launch");
}

}  // namespace orcd
