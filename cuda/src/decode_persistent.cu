// The llama family's decode step (one token) in one persistent kernel (options.cuh's
// ORCD_FUSED=persistent), as calm's kernel_forward and
// the Hazy Research megakernel do it: the blocks (as many as the GPU holds at once) walk a plan
// built at load, per layer decode_fused.cu's five ops as device stages (fused_stage.cuh,
// attention_decode.cuh), with a grid barrier between stages instead of a kernel boundary:
//   rmsnorm → q, k, v (+ bias) → rope → K, V into the cache     | barrier
//   attention over the cache                                    | barrier
//   x += attn_output · att                                      | barrier
//   rmsnorm → gate, up → swiglu (→ hidden as Q8_1)              | barrier
//   x += ffn_down · hidden                                      | barrier
// then rmsnorm → output → logits. Before each barrier every warp asks L2 for the weight rows it
// reads in the next stage, so that their first loads overlap the wait. The embedding lookup
// before and the sampler after stay launches of their own.
#include <algorithm>
#include "attention_decode.cuh"
#include "context.cuh"
#include "fused_stage.cuh"
#include "ops.cuh"
#include "overlap.cuh"

namespace orcd {

struct DecodeLayer {
    FusedMatvec qkv;
    DecodeAttention attention;
    int attention_blocks;  // per head: the split blocks of attention_decode_block
    FusedMatvec attn_output, gate_up, down;
};

namespace {

constexpr int kThreads = kAttentionChunk;  // attention_decode_block's block
constexpr int kMaxBlocksPerSm = 4;
constexpr int kPrefetchPairs = 4;  // pairs of rows per warp asked of L2 before a barrier

// The grid barrier's words, each on a 128-byte line of its own: the waiters' polls of the
// generation do not queue behind the arrivals' atomics.
constexpr int kBarrierWords = 64;
constexpr int kGenerationWord = 32;

struct PersistentArgs {
    const DecodeLayer *layers;
    const FusedMatvec *logits;
    unsigned *barrier;  // arrivals at [0], generation at [kGenerationWord]
    int n_layers;
};

// Every block waits here until all have arrived; what a block wrote before is visible to every
// block after (the fences, as cooperative groups' grid sync has them). The grid must be
// resident at once: plan_blocks sizes it by the occupancy.
__device__ void grid_sync(unsigned *barrier) {
    __syncthreads();
    if (threadIdx.x == 0) {
        volatile unsigned *generation = barrier + kGenerationWord;
        unsigned g = *generation;
        __threadfence();
        if (atomicAdd(barrier, 1) == gridDim.x - 1) {
            barrier[0] = 0;
            __threadfence();
            *generation = g + 1;
        } else {
            while (*generation == g) {
            }
        }
        __threadfence();
    }
    __syncthreads();
}

// L2 prefetches of the first kPrefetchPairs pairs of rows this warp takes in op.
__device__ void prefetch_rows(const FusedMatvec &op) {
    int rows = total_rows(op), warps = blockDim.x / 32, pairs = (rows + 1) / 2;
    int lane = threadIdx.x % 32, p = blockIdx.x * warps + threadIdx.x / 32;
    for (int k = 0; k < kPrefetchPairs && p < pairs; ++k, p += gridDim.x * warps) {
        Pair pair = pair_of(op, p, rows);
        for (int row : {pair.row0, pair.row1}) {
            int part = part_of(op, row);
            size_t bytes = on_format<false, size_t>(op.w[part].type, [&](auto f) {
                return row_bytes<decltype(f)>(op.cols);
            });
            const char *base = static_cast<const char *>(op.w[part].data) + bytes * row;
            for (size_t off = size_t(lane) * 128; off < bytes; off += 32 * 128) prefetch_line_l2(base + off);
        }
    }
}

__device__ __forceinline__ void matvec_stage(const FusedMatvec &op, uint8_t *smem) {
    if (op.integer) fused_matvec_block<true>(op, smem, blockIdx.x, gridDim.x);
    else fused_matvec_block<false>(op, smem, blockIdx.x, gridDim.x);
}

__device__ void attention_stage(const DecodeLayer &l) {
    int ny = l.attention_blocks, total = l.attention.s.heads * ny;
    for (int b = blockIdx.x; b < total; b += gridDim.x)
        attention_decode_block(l.attention, b / ny, b % ny, ny);
}

__global__ void __launch_bounds__(kThreads, kMaxBlocksPerSm)
decode_persistent_kernel(const PersistentArgs args) {
    extern __shared__ __align__(16) uint8_t smem[];
    for (int i = 0; i < args.n_layers; ++i) {
        const DecodeLayer &l = args.layers[i];
        matvec_stage(l.qkv, smem);
        prefetch_rows(l.attn_output);
        grid_sync(args.barrier);
        attention_stage(l);
        grid_sync(args.barrier);
        matvec_stage(l.attn_output, smem);
        prefetch_rows(l.gate_up);
        grid_sync(args.barrier);
        matvec_stage(l.gate_up, smem);
        prefetch_rows(l.down);
        grid_sync(args.barrier);
        matvec_stage(l.down, smem);
        prefetch_rows(i + 1 < args.n_layers ? args.layers[i + 1].qkv : *args.logits);
        grid_sync(args.barrier);
    }
    matvec_stage(*args.logits, smem);
}

bool is_llama_family(const orcd_model_config &c) { return c.arch != ORCD_ARCH_GPT_OSS; }

// As many blocks as the GPU holds at once, at most `per_sm_cap` per SM: the barrier needs every
// block resident. 0 when the kernel does not fit at all.
orcd_status plan_blocks(size_t smem, int per_sm_cap, int *blocks) {
    int per_sm = 0, sms = 0;
    ORCD_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_persistent_kernel,
                                                            kThreads, smem));
    ORCD_TRY(multiprocessors(&sms));
    *blocks = std::min(per_sm, per_sm_cap) * sms;
    return ORCD_OK;
}

}  // namespace

DecodePath decode_path_for(const Options &o, const orcd_model_config &c, const Weights &w) {
    bool fused = fused_decode_fits(c, w), persistent = fused && is_llama_family(c);
    auto fits = [&](DecodePath d) {
        return d == DecodePath::steps || (d == DecodePath::fused && fused) ||
               (d == DecodePath::persistent && persistent);
    };
    if (o.decode_chosen) return fits(o.decode) ? o.decode : DecodePath::steps;
    return fits(DecodePath::fused) ? DecodePath::fused : DecodePath::steps;
}

size_t persistent_plan_bytes(const orcd_model_config &c) {
    return size_t(c.block_count) * sizeof(DecodeLayer) + sizeof(FusedMatvec) +
           kBarrierWords * sizeof(unsigned);
}

orcd_status persistent_plan_build(Allocator &alloc, Model &m, const Activations &a,
                                  const int *pos, int blocks_per_sm, cudaStream_t stream) {
    Pass p{m, a, 1, pos, stream};
    int n = m.cfg.block_count, blocks = 0;
    std::vector<DecodeLayer> layers(n);
    FusedMatvec logits = logits_op(p);
    ORCD_TRY(fused_matvec_check(&logits));
    size_t smem = fused_matvec_smem(logits);
    for (int i = 0; i < n; ++i) {
        DecodeLayer &l = layers[i];
        l.qkv = qkv_op(p, i), l.attention = attention_op(p, i);
        l.attn_output = attn_output_op(p, i), l.gate_up = gate_up_op(p, i), l.down = down_op(p, i);
        for (FusedMatvec *op : {&l.qkv, &l.attn_output, &l.gate_up, &l.down}) {
            ORCD_TRY(fused_matvec_check(op));
            smem = std::max(smem, fused_matvec_smem(*op));
        }
    }
    ORCD_TRY(plan_blocks(smem, blocks_per_sm ? blocks_per_sm : kMaxBlocksPerSm, &blocks));
    if (blocks == 0) {  // no block fits an SM: the fused kernels instead
        m.decode = DecodePath::fused;
        return ORCD_OK;
    }
    for (DecodeLayer &l : layers) {
        int heads = l.attention.s.heads;
        l.attention_blocks = std::max(1, std::min(l.attention.splits, blocks / heads));
    }
    PersistentPlan &plan = m.plan;
    DecodeLayer *dev_layers = nullptr;
    FusedMatvec *dev_logits = nullptr;
    ORCD_TRY(alloc.alloc(&dev_layers, n, "persistent decode plan"));
    ORCD_TRY(alloc.alloc(&dev_logits, 1, "persistent decode plan (logits)"));
    ORCD_TRY(alloc.alloc(&plan.barrier, kBarrierWords, "grid barrier"));
    ORCD_CUDA(cudaMemcpyAsync(dev_layers, layers.data(), n * sizeof(DecodeLayer),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(dev_logits, &logits, sizeof logits, cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemsetAsync(plan.barrier, 0, kBarrierWords * sizeof(unsigned), stream));
    // the host vectors die here: the copies must have left them
    ORCD_CUDA(cudaStreamSynchronize(stream));
    plan.layers = dev_layers, plan.logits = dev_logits;
    plan.blocks = blocks, plan.smem = smem, plan.x = a.x, plan.pos = pos;
    return ORCD_OK;
}

orcd_status llama_decode_persistent(const Model &m, const Activations &a, const int32_t *id,
                                    const int *pos, cudaStream_t stream) {
    const PersistentPlan &plan = m.plan;
    // The plan holds the decode step's own buffers; other ones (a one-token teacher-forced
    // pass) take the fused kernels, the same ops.
    if (a.x != plan.x || pos != plan.pos) return llama_decode_fused(m, a, id, pos, stream);
    const Tensor &e = m.w.token_embd;
    ORCD_TRY(embed_rows(e.type, e.data, id, a.x, m.cfg.embedding_length, 1, stream));
    PersistentArgs args{plan.layers, plan.logits, plan.barrier, m.cfg.block_count};
    decode_persistent_kernel<<<plan.blocks, kThreads, plan.smem, stream>>>(args);
    return check(cudaGetLastError(), "persistent decode kernel launch");
}

}  // namespace orcd
