// The sampling pipeline of api.md on the GPU: repetition penalty → temperature → top-k →
// softmax → top-p → min-p → Philox4x32-10 draw. Only the chosen id leaves the device.
// Two stable descending radix sorts give the reference's orders exactly: the logits (top-k;
// ties keep the lower id first), then the kept probabilities keyed (p, lower id first). Sums
// are taken in the reference's order too, so equal logits give equal bits and the same id.
#include <algorithm>
#include <cfloat>
#include <cub/device/device_radix_sort.cuh>
#include "common.cuh"
#include "reduce.cuh"
#include "sampling.cuh"

namespace orcd {

constexpr int kThreads = 1024;

SamplingArgs sampling_args(const orcd_sampling &p) {
    SamplingArgs a;
    a.temperature = p.temperature;
    a.top_p = p.top_p;
    a.min_p = p.min_p;
    a.repetition_penalty = p.repetition_penalty;
    a.top_k = p.top_k;
    a.key[0] = uint32_t(p.seed & 0xffffffffu);
    a.key[1] = uint32_t(p.seed >> 32);
    return a;
}

SamplerPath sampler_path(const orcd_sampling &p) {
    return {p.temperature == 0.0f, p.repetition_penalty != 1.0f};
}

// Philox4x32-10 (Salmon et al. 2011, Random123): 10 rounds, the key bumped between rounds.
__device__ uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; ++round) {
        if (round) k.x += 0x9E3779B9u, k.y += 0xBB67AE85u;
        uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// u in [0, 1) from the step's counter: 24 random bits, exact in float32.
__device__ float uniform(const SamplingArgs &a, int step) {
    uint4 r = philox4x32_10(make_uint4(uint32_t(step), 0u, 0u, 0u), make_uint2(a.key[0], a.key[1]));
    return float(r.x >> 8) * (1.0f / 16777216.0f);
}

__global__ void clear_seen_kernel(uint8_t *seen, int vocab) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < vocab) seen[i] = 0;
}

__global__ void mark_seen_kernel(uint8_t *seen, int vocab, const int32_t *history,
                                 const StepState *state) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= state->n_history) return;
    int32_t id = history[i];
    if (id >= 0 && id < vocab) seen[id] = 1;  // duplicates write the same value
}

// Penalty once per distinct id, then the temperature (skipped by greedy decoding); an id the
// mask forbids becomes -inf.
__global__ void penalize_kernel(const float *logits, const uint8_t *seen, const SamplingArgs *a,
                                float *work, int vocab, bool greedy, const uint32_t *mask) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= vocab) return;
    float l = logits[i], r = a->repetition_penalty;
    if (seen[i] && r != 1.0f) l = l > 0.0f ? l / r : l * r;
    if (mask && !(mask[i / 32] >> (i % 32) & 1u)) l = -INFINITY;
    work[i] = greedy ? l : l / a->temperature;
}

// The drawn id becomes the next step's token, one position on: the device advances the step
// itself, so that the host may launch step k + 1 before it has read id k (decode.cu).
__device__ void commit(int32_t id, StepState *state, int32_t *history, int history_cap) {
    state->token = id;
    if (state->n_history < history_cap) history[state->n_history] = id;
    ++state->pos;
    ++state->step;
    ++state->n_history;
}

__device__ __forceinline__ void keep_best(float x, int i, float &v, int &id, int vocab) {
    if (x > v || (x == v && i < id) || id == vocab) v = x, id = i;
}

// Lowest id among the maxima, in two launches: kArgmaxBlocks blocks each scan a strided slice
// of float4s, a thread keeping kLoads loads in flight (one dependent load at a time took 65 us
// over Qwen's 151,936 logits on the H100, measured with ncu; one block of 1,024 threads took 22
// us on the H200), and leave their best; one block then picks among them. (Largest value,
// lowest id) is one answer whatever the slices: the same id from run to run.
constexpr int kArgmaxBlocks = 128, kArgmaxThreads = 256;

// The best of this block's threads' (v, id) by keep_best's rule, in every thread.
__device__ void block_best(float &v, int &id, int vocab) {
    __shared__ float best_v[kArgmaxThreads];
    __shared__ int best_i[kArgmaxThreads];
    best_v[threadIdx.x] = v, best_i[threadIdx.x] = id;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            keep_best(best_v[threadIdx.x + half], best_i[threadIdx.x + half], v, id, vocab);
            best_v[threadIdx.x] = v, best_i[threadIdx.x] = id;
        }
        __syncthreads();
    }
    v = best_v[0], id = best_i[0];
}

// `work` is its own cudaMalloc: 16-byte aligned.
__global__ void __launch_bounds__(kArgmaxThreads)
argmax_blocks_kernel(const float *work, int vocab, float *best_v, int2 *best_i) {
    constexpr int kLoads = 8;
    float v = -FLT_MAX;
    int id = vocab;
    const float4 *quads = reinterpret_cast<const float4 *>(work);
    int n = vocab / 4, thread = blockIdx.x * blockDim.x + threadIdx.x;
    int threads = gridDim.x * blockDim.x;
    for (int base = thread; base < n; base += kLoads * threads) {
        float4 q[kLoads];
#pragma unroll
        for (int j = 0; j < kLoads; ++j) q[j] = quads[min(base + j * threads, n - 1)];
#pragma unroll
        for (int j = 0; j < kLoads; ++j) {
            int k = base + j * threads;
            if (k >= n) break;
            keep_best(q[j].x, 4 * k, v, id, vocab);
            keep_best(q[j].y, 4 * k + 1, v, id, vocab);
            keep_best(q[j].z, 4 * k + 2, v, id, vocab);
            keep_best(q[j].w, 4 * k + 3, v, id, vocab);
        }
    }
    for (int i = 4 * n + thread; i < vocab; i += threads) keep_best(work[i], i, v, id, vocab);
    block_best(v, id, vocab);
    if (threadIdx.x == 0) best_v[blockIdx.x] = v, best_i[blockIdx.x].x = id;
}

__global__ void __launch_bounds__(kArgmaxThreads)
argmax_kernel(const float *best_v, const int2 *best_i, int blocks, int vocab, StepState *state,
              int32_t *history, int history_cap) {
    float v = -FLT_MAX;
    int id = vocab;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x)
        keep_best(best_v[b], best_i[b].x, v, id, vocab);
    block_best(v, id, vocab);
    if (threadIdx.x == 0) commit(id, state, history, history_cap);
}

// The softmax denominator is summed as numpy's pairwise_sum_FLOAT sums a float32 array (what
// the reference's np.sum does): blocks of at most 128 values in 8 interleaved lanes, halves
// split at a multiple of 8. Same order, same bits.
constexpr int kPairwiseBlock = 128;

__device__ float numpy_block_sum(const float *a, int n) {
    float res = 0.0f;
    if (n < 8) {
        for (int i = 0; i < n; ++i) res += a[i];
        return res;
    }
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int i = 8;
    for (; i < n - n % 8; i += 8)
        for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
}

__device__ int pairwise_split(int n) { return n / 2 - (n / 2) % 8; }

static int pairwise_max_blocks(int n) { return n / 32 + 2; }  // blocks hold at least 57 values

// The blocks of the pairwise tree over n values, left to right; returns their count.
__device__ int pairwise_blocks(int n, int2 *blocks) {
    int2 stack[64];
    int top = 0, count = 0;
    stack[top++] = make_int2(0, n);
    while (top) {
        int2 s = stack[--top];
        if (s.y <= kPairwiseBlock) {
            blocks[count++] = s;
            continue;
        }
        int half = pairwise_split(s.y);
        stack[top++] = make_int2(s.x + half, s.y - half);  // the right half pops after the left
        stack[top++] = make_int2(s.x, half);
    }
    return count;
}

// Adds the block sums (left to right) up the pairwise tree over n values.
__device__ float pairwise_combine(int n, const float *block_sums) {
    struct Frame {
        int n, state;  // state 0: new, 1: left half pending, 2: right half pending
        float left;
    };
    Frame stack[64];
    int top = 0, next = 0;
    stack[top++] = {n, 0, 0.0f};
    float value = 0.0f;
    bool returned = false;
    for (;;) {
        if (!returned) {
            Frame &f = stack[top - 1];
            if (f.n <= kPairwiseBlock) {
                value = block_sums[next++];
                --top;
                returned = true;
            } else {
                f.state = 1;
                stack[top++] = {pairwise_split(f.n), 0, 0.0f};
            }
            continue;
        }
        if (top == 0) return value;
        Frame &f = stack[top - 1];
        if (f.state == 1) {
            f.left = value;
            f.state = 2;
            stack[top++] = {f.n - pairwise_split(f.n), 0, 0.0f};
            returned = false;
        } else {
            value = f.left + value;
            --top;
        }
    }
}

// Keeps the top k (or all) of the sorted logits and keys each by its probability
// exp(l - max) / Σ: p's bits above the complement of its id, so that a descending sort puts
// equal probabilities lower id first. Ids not kept get key 0 and sort last.
__global__ void softmax_keys_kernel(const float *sorted, const int32_t *sorted_ids, float *e,
                                    int2 *blocks, float *block_sums, uint64_t *keys, int vocab,
                                    const SamplingArgs *args) {
    __shared__ int n_blocks;
    __shared__ float sum;
    int k = args->top_k, kept = k > 0 && k < vocab ? k : vocab;
    float m = sorted[0];
    for (int i = threadIdx.x; i < kept; i += blockDim.x) e[i] = expf(sorted[i] - m);
    if (threadIdx.x == 0) n_blocks = pairwise_blocks(kept, blocks);
    __syncthreads();
    for (int j = threadIdx.x; j < n_blocks; j += blockDim.x)
        block_sums[j] = numpy_block_sum(e + blocks[j].x, blocks[j].y);
    __syncthreads();
    if (threadIdx.x == 0) sum = pairwise_combine(kept, block_sums);
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        uint64_t p = i < kept ? __float_as_uint(e[i] / sum) : 0u;
        keys[i] = i < kept ? p << 32 | ~uint32_t(sorted_ids[i]) : 0u;
    }
}

__device__ float prob(uint64_t key) { return __uint_as_float(uint32_t(key >> 32)); }

// Top-p, min-p and the draw over the probabilities sorted descending. The cumulative sums are
// taken once, in order, in float32 as the reference takes them, into `cum`; the cuts and the
// draw are binary searches over them (cum rises, p falls).
__global__ void draw_kernel(const uint64_t *keys, const int32_t *ids, float *cum, int vocab,
                            const SamplingArgs *args, StepState *state, int32_t *history,
                            int history_cap) {
    const SamplingArgs a = *args;
    int kept = a.top_k > 0 && a.top_k < vocab ? a.top_k : vocab;
    float c = 0.0f;
    for (int i = 0; i < kept; ++i) {
        c += prob(keys[i]);
        cum[i] = c;
        if (a.top_p < 1.0f && c >= a.top_p) {  // the shortest prefix reaching top_p
            kept = i + 1;
            break;
        }
    }
    if (a.min_p > 0.0f) {  // the prefix with p >= min_p * p_max
        float floor = a.min_p * prob(keys[0]);
        int lo = 1, hi = kept;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (prob(keys[mid - 1]) >= floor) lo = mid; else hi = mid - 1;
        }
        kept = lo;
    }
    float target = uniform(a, state->step) * cum[kept - 1];
    int lo = 0, hi = kept - 1;  // the first sum above target; the last if rounding leaves none
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > target) hi = mid; else lo = mid + 1;
    }
    commit(ids[lo], state, history, history_cap);
}

__global__ void iota_kernel(int32_t *ids, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) ids[i] = i;
}

static unsigned blocks_for(int n) { return unsigned((n + 255) / 256); }

// CUB's temporary storage for the sorts: its alternate keys and values and its histograms. CUB
// can tell the size only with a GPU present, so the VRAM figure (orcd inspect on any machine,
// the check at load) takes this bound, and sampler_init checks CUB's own figure against it.
static size_t sort_temp_bytes(int vocab) {
    return size_t(vocab) * 2 * (sizeof(uint64_t) + sizeof(int32_t)) + (size_t(1) << 20);
}

static orcd_status check_sort_temp(int vocab) {
    size_t logits = 0, probs = 0;
    ORCD_CUDA(cub::DeviceRadixSort::SortPairsDescending(
        nullptr, logits, (const float *)nullptr, (float *)nullptr, (const int32_t *)nullptr,
        (int32_t *)nullptr, vocab));
    ORCD_CUDA(cub::DeviceRadixSort::SortPairsDescending(
        nullptr, probs, (const uint64_t *)nullptr, (uint64_t *)nullptr, (const int32_t *)nullptr,
        (int32_t *)nullptr, vocab));
    size_t need = logits > probs ? logits : probs;
    if (need <= sort_temp_bytes(vocab)) return ORCD_OK;
    return fail(ORCD_ERR_INVALID, "the sampler's sorts need %zu bytes of CUB storage, over the "
                "%zu counted for a vocabulary of %d", need, sort_temp_bytes(vocab), vocab);
}

size_t sampler_bytes(int vocab) {
    return size_t(vocab) * (2 * sizeof(float) + 3 * sizeof(int32_t) + 2 * sizeof(uint64_t) + 1) +
           size_t(pairwise_max_blocks(vocab)) * (sizeof(int2) + sizeof(float)) +
           sort_temp_bytes(vocab);
}

orcd_status sampler_init(Sampler &s, Allocator &alloc, int vocab, cudaStream_t stream) {
    s.vocab = vocab;
    ORCD_TRY(check_sort_temp(vocab));
    s.sort_temp_bytes = sort_temp_bytes(vocab);
    ORCD_TRY(alloc.alloc(&s.work, vocab, "sampler logits"));
    ORCD_TRY(alloc.alloc(&s.sorted, vocab, "sampler sorted logits"));
    ORCD_TRY(alloc.alloc(&s.ids, vocab, "sampler ids"));
    ORCD_TRY(alloc.alloc(&s.sorted_ids, vocab, "sampler sorted ids"));
    ORCD_TRY(alloc.alloc(&s.keys, vocab, "sampler probability keys"));
    ORCD_TRY(alloc.alloc(&s.sorted_keys, vocab, "sampler sorted keys"));
    ORCD_TRY(alloc.alloc(&s.drawn_ids, vocab, "sampler drawn ids"));
    ORCD_TRY(alloc.alloc(&s.blocks, pairwise_max_blocks(vocab), "sampler sum blocks"));
    ORCD_TRY(alloc.alloc(&s.block_sums, pairwise_max_blocks(vocab), "sampler block sums"));
    ORCD_TRY(alloc.alloc(&s.seen, vocab, "sampler history marks"));
    ORCD_TRY(alloc.alloc(&s.sort_temp, s.sort_temp_bytes, "sampler sort storage"));
    iota_kernel<<<blocks_for(vocab), 256, 0, stream>>>(s.ids, vocab);
    return check(cudaGetLastError(), "iota kernel launch");
}

orcd_status sample(const Sampler &s, const float *logits, const SamplingArgs *args,
                   StepState *state, int32_t *history, int history_cap, SamplerPath path,
                   const uint32_t *mask, cudaStream_t stream) {
    bool greedy = path.greedy;
    // Greedy with no penalty and no mask: the argmax of the logits themselves, which is what
    // penalize_kernel would copy to `work` (argmax_blocks_kernel reads 16-byte-aligned rows).
    bool plain = greedy && !path.penalized && !mask && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
    if (!plain) {
        clear_seen_kernel<<<blocks_for(s.vocab), 256, 0, stream>>>(s.seen, s.vocab);
        mark_seen_kernel<<<blocks_for(history_cap), 256, 0, stream>>>(s.seen, s.vocab, history,
                                                                      state);
        penalize_kernel<<<blocks_for(s.vocab), 256, 0, stream>>>(logits, s.seen, args, s.work,
                                                                  s.vocab, greedy, mask);
        ORCD_CUDA(cudaGetLastError());
    }
    if (greedy) {  // the pairwise blocks' buffers hold the argmax blocks' bests
        int blocks = std::min({kArgmaxBlocks, pairwise_max_blocks(s.vocab),
                               int(blocks_for(s.vocab / 4 + 1))});
        argmax_blocks_kernel<<<blocks, kArgmaxThreads, 0, stream>>>(plain ? logits : s.work,
                                                                    s.vocab, s.block_sums,
                                                                    s.blocks);
        ORCD_CUDA(cudaGetLastError());
        argmax_kernel<<<1, kArgmaxThreads, 0, stream>>>(s.block_sums, s.blocks, blocks, s.vocab,
                                                        state, history, history_cap);
        return check(cudaGetLastError(), "argmax kernel launch");
    }
    size_t temp = s.sort_temp_bytes;
    ORCD_CUDA(cub::DeviceRadixSort::SortPairsDescending(s.sort_temp, temp, s.work, s.sorted,
                                                        s.ids, s.sorted_ids, s.vocab, 0,
                                                        int(sizeof(float) * 8), stream));
    softmax_keys_kernel<<<1, kThreads, 0, stream>>>(s.sorted, s.sorted_ids, s.work, s.blocks,
                                                     s.block_sums, s.keys, s.vocab, args);
    ORCD_CUDA(cudaGetLastError());
    temp = s.sort_temp_bytes;
    ORCD_CUDA(cub::DeviceRadixSort::SortPairsDescending(s.sort_temp, temp, s.keys, s.sorted_keys,
                                                        s.sorted_ids, s.drawn_ids, s.vocab, 0,
                                                        int(sizeof(uint64_t) * 8), stream));
    draw_kernel<<<1, 1, 0, stream>>>(s.sorted_keys, s.drawn_ids, s.sorted, s.vocab, args, state,
                                     history, history_cap);
    return check(cudaGetLastError(), "draw kernel launch");
}

}  // namespace orcd
