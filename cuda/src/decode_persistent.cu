// The llama family's decode step (one token) in one persistent kernel (options.cuh's
// ORCD_FUSED=persistent, sm_90), as calm's kernel_forward and the Hazy Research megakernel do
// it: the blocks (one or a few per SM, all resident at once) walk a plan built at load, per layer
// decode_fused.cu's five ops as device stages (fused_stage.cuh, attention_decode.cuh), with a
// grid barrier between stages instead of a kernel boundary:
//   rmsnorm → q, k, v (+ bias) → rope → K, V into the cache     | barrier
//   attention over the cache                                    | barrier
//   x += attn_output · att                                      | barrier
//   rmsnorm → gate, up → swiglu (→ hidden as Q8_1)              | barrier
//   x += ffn_down · hidden                                      | barrier
// then rmsnorm → output → logits. The embedding lookup before and the sampler after stay
// launches of their own.
//
// The weights never wait for a barrier. Each block owns a share of every op's pairs of rows
// (fused_stage.cuh's Pair) and streams the rows of its shares, op after op and layer after
// layer, into a ring of shared-memory slots with the bulk copy engine (cp.async.bulk, each slot
// completing on an mbarrier); a slot is refilled with the next rows as soon as its own have
// been used. So while the blocks meet at a barrier, or one stage's attention keeps a few of them
// busy, the next stages' rows are already arriving, and a stage's dot products read shared
// memory. The rows keep the GGUF's bytes and their alignment modulo 16 (a copy starts at the
// 16-byte boundary below a row), so quant.cuh's units read them there unchanged
// (UnitIn<FromShared>). Which bytes go into which slot is planned at load (decode_plan.cu's
// ChunkPlan, one list per block), so that a refill is one record and two copies, and each stage's op is copied into
// shared memory before the barrier that opens it: no stage chases the plan through memory.
//
// Where it stands (H200, Qwen2.5-0.5B shape, clock64 per stage of one block, 2026-12-04): the
// rows are always there when a stage wants them (its waits on the ring ~1 % of the step), but the
// step is slower than the fused kernels' (693 against 1,331 t/s): per layer ~11 µs in the five
// barriers, ~2 µs a stage to stage x, and a stage over a few pairs a warp ~6 µs however few its
// rows: the chains of one pair (units, butterfly, epilogue) with eight warps an SM. Hence never
// chosen unasked (options.cuh).
#include <algorithm>
#include "attention_decode.cuh"
#include "decode_plan.cuh"
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

// Eight warps a block: the stages' dot products and x's staging are chains of latencies, and
// more warps keep more of them in flight (attention_decode_block's warps past its four only
// meet its barriers).
constexpr int kThreads = 256;
constexpr int kBlockWarps = kThreads / 32;
static_assert(kThreads >= kAttentionChunk && kThreads % 32 == 0, "attention_decode_block's block");
constexpr int kDefaultBlocksPerSm = 1;
constexpr int kMaxSlots = 16;
// Slots of 64 KB (three a block): each stage pays a wait, a barrier and a refill per chunk, so
// fewer, larger chunks (Qwen2.5-0.5B shape's logits: 18 a block, not 72 of 16 KB).
constexpr uint32_t kMinSlotBytes = 64 << 10;

// The grid barrier's words, each on a 128-byte line of its own: the arrivals (counted up
// through the whole step) and the blocks that have left the kernel.
constexpr int kBarrierWords = 64;
constexpr int kExitWord = 32;

struct PersistentArgs {
    const DecodeLayer *layers;
    const FusedMatvec *logits;
    const ChunkPlan *chunks;  // block b's: [first_chunk[b], first_chunk[b + 1])
    const int *first_chunk;
    unsigned *barrier;
    int n_layers;
    int slots;            // of the ring
    uint32_t slot_bytes;  // each a multiple of 128
    uint32_t x_bytes;     // shared memory before the ring: x staged (stage_x)
};

// ---- the bulk copy engine and its mbarriers (sm_90) -------------------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ uint32_t shared_address(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

__device__ __forceinline__ void mbarrier_init(uint64_t *bar, unsigned count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(count)
                 : "memory");
#endif
}

// The barriers' initialisation is visible to the copy engine before a copy completes on them.
__device__ __forceinline__ void mbarrier_init_fence() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// The slot's phase ends once `bytes` more have landed (this thread's arrival is the one the
// barrier counts).
__device__ __forceinline__ void mbarrier_expect(uint64_t *bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(bar)),
                 "r"(bytes)
                 : "memory");
#endif
}

__device__ __forceinline__ void bulk_copy(void *dst, const void *src, uint32_t bytes, uint64_t *bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
            shared_address(dst)),
        "l"(src), "r"(bytes), "r"(shared_address(bar))
        : "memory");
#endif
}

__device__ __forceinline__ void mbarrier_wait(uint64_t *bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t done = 0;
    while (!done)
        asm volatile(
            "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
            : "=r"(done)
            : "r"(shared_address(bar)), "r"(parity)
            : "memory");
#endif
}

// ---- the grid barrier --------------------------------------------------------------------------

// Every block waits here until all have arrived; what a block wrote before is visible to every
// block after (the fences, as cooperative groups' grid sync has them). The arrivals are counted
// up through the step (`target` is this block's running count of them), so no word is reset
// between barriers; the last block to leave the kernel resets them for the next step
// (leave_grid). The grid must be resident at once: persistent_plan_build sizes it so.
__device__ void grid_sync(unsigned *barrier, unsigned &target) {
    target += gridDim.x;
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(barrier, 1u);
        while (*reinterpret_cast<volatile unsigned *>(barrier) < target) {
        }
        __threadfence();
    }
    __syncthreads();
}

// Every block has passed every barrier once all have come here.
__device__ void leave_grid(unsigned *barrier) {
    __syncthreads();
    if (threadIdx.x == 0 && atomicAdd(barrier + kExitWord, 1u) == gridDim.x - 1) {
        atomicExch(barrier, 0u);
        atomicExch(barrier + kExitWord, 0u);
    }
}

// ---- what a block streams: its share of each op, in chunks planned at load (decode_plan.cuh) -----

// Where a row that starts at global address w lies in a slot holding chunk c.
__device__ __forceinline__ const uint8_t *staged_row(const ChunkPlan &c, const uint8_t *slot,
                                                     const uint8_t *w) {
    bool second = c.bytes[1] && w >= c.src[1] && w < c.src[1] + c.bytes[1];
    return second ? slot + c.bytes[0] + (w - c.src[1]) : slot + (w - c.src[0]);
}

// The ring: `count` chunks consumed so far; chunk n is in slot n % slots, its phase n / slots.
// Thread 0 refills: `next` is the block's next chunk to copy (of `end`), held in `ahead`.
struct Ring {
    uint8_t *slots;
    uint64_t *full;
    ChunkPlan *meta;  // per slot, the chunk it holds
    int count, next, end;
    ChunkPlan ahead;
};

// Thread 0: the next planned chunk into `slot`, and the record after it fetched meanwhile.
__device__ void refill(const PersistentArgs &a, Ring &ring, int slot) {
    if (ring.next >= ring.end) return;
    const ChunkPlan &c = ring.meta[slot] = ring.ahead;
    uint8_t *base = ring.slots + size_t(slot) * a.slot_bytes;
    mbarrier_expect(ring.full + slot, c.bytes[0] + c.bytes[1]);
    bulk_copy(base, c.src[0], c.bytes[0], ring.full + slot);
    if (c.bytes[1]) bulk_copy(base + c.bytes[0], c.src[1], c.bytes[1], ring.full + slot);
    if (++ring.next < ring.end) ring.ahead = a.chunks[ring.next];
}

// ---- the stages --------------------------------------------------------------------------------

// An op into shared memory (`to`), where the stage reads it: the block's threads copy it
// together, one round trip to L2. Called before the barrier that opens the op's stage (the op
// is never written), after every thread is done with the one before.
__device__ void stage_op(const FusedMatvec &op, FusedMatvec *to) {
    static_assert(sizeof(FusedMatvec) % 8 == 0 && sizeof(FusedMatvec) / 8 <= kThreads,
                  "an op is copied as one 8-byte word a thread");
    __syncthreads();
    if (threadIdx.x < sizeof(FusedMatvec) / 8)
        reinterpret_cast<uint2 *>(to)[threadIdx.x] = reinterpret_cast<const uint2 *>(&op)[threadIdx.x];
}

// Pairs of a chunk in format F, warp w taking pairs w, w + kBlockWarps, ...: pair_dot_q8_1's
// sums, from the slot. (A warp taking four pairs at a time, their units side by side, was
// slower on the H200: 472 against 693 t/s, Qwen2.5-0.5B shape; its registers and code grew.)
template <class F>
__device__ void slot_pairs(const FusedMatvec &op, const ChunkPlan &c, const uint8_t *base,
                           const StagedX &x, const Geometry &g, float2 *partial) {
    for (int p = c.pair0 + g.warp; p < c.pair1; p += kBlockWarps) {
        Pair pair = pair_of(op, p, g.rows);
        const uint8_t *w0, *w1;
        pair_rows<F>(op, pair, w0, w1);
        float2 y = pair_dot_q8_1<F, 1, FromShared>(staged_row(c, base, w0), staged_row(c, base, w1),
                                                   x, op.cols, 0, 1);
        finish_pair(op, g, partial, true, pair, y);
    }
}

// A matvec op (staged by stage_op) over this block's share, chunk by chunk from the ring: x
// staged once, each warp takes pairs of the chunk and its epilogue; the slot is refilled once all
// warps are done with it.
__device__ void matvec_stage(const PersistentArgs &a, const FusedMatvec &op, uint8_t *smem,
                             Ring &ring, float2 *partial) {
    Share share = share_of(op, blockIdx.x, gridDim.x);
    if (share.begin >= share.end) return;
    StagedX x = stage_x<true>(op, smem);
    int rows = total_rows(op);
    Geometry g{rows, (rows + 1) / 2, 1, kBlockWarps, int(threadIdx.x) / 32, 0, int(threadIdx.x) % 32};
    for (int c0 = share.begin; c0 < share.end; ++ring.count) {
        int slot = ring.count % a.slots;
        const uint8_t *base = ring.slots + size_t(slot) * a.slot_bytes;
        mbarrier_wait(ring.full + slot, (ring.count / a.slots) & 1);
        const ChunkPlan &c = ring.meta[slot];
        int r0 = pair_of(op, c.pair0, rows).row0, part = part_of(op, r0);  // a chunk's one part
        on_format<true, int>(op.w[part].type, [&](auto f) {
            using F = decltype(f);
            slot_pairs<F>(op, c, base, x, g, partial);
            return 0;
        });
        c0 = c.pair1;
        __syncthreads();  // every warp is done with the slot's rows (and its record)
        if (threadIdx.x == 0) refill(a, ring, slot);
    }
}

__device__ void attention_stage(const DecodeLayer &l) {
    int ny = l.attention_blocks, total = l.attention.s.heads * ny;
    for (int b = blockIdx.x; b < total; b += gridDim.x)
        attention_decode_block(l.attention, b / ny, b % ny, ny);
}

__global__ void __launch_bounds__(kThreads, 1) decode_persistent_kernel(const PersistentArgs a) {
    extern __shared__ __align__(128) uint8_t smem[];
    __shared__ __align__(8) uint64_t full[kMaxSlots];
    __shared__ ChunkPlan meta[kMaxSlots];
    __shared__ __align__(16) uint8_t op_bytes[sizeof(FusedMatvec)];  // no constructor runs here
    __shared__ float2 partial[kBlockWarps];
    FusedMatvec &op = *reinterpret_cast<FusedMatvec *>(op_bytes);
    Ring ring{smem + a.x_bytes, full, meta, 0, a.first_chunk[blockIdx.x], a.first_chunk[blockIdx.x + 1], {}};
    if (threadIdx.x == 0) {  // the ring's first chunks: they read only weights, never written
        for (int s = 0; s < a.slots; ++s) mbarrier_init(full + s, 1);
        mbarrier_init_fence();
        if (ring.next < ring.end) ring.ahead = a.chunks[ring.next];
        for (int s = 0; s < a.slots; ++s) refill(a, ring, s);
    }
    stage_op(a.layers[0].qkv, &op);
    __syncthreads();
    wait_for_previous_kernel();  // the embedding's x
    unsigned target = 0;
    for (int i = 0; i < a.n_layers; ++i) {
        const DecodeLayer &l = a.layers[i];
        matvec_stage(a, op, smem, ring, partial);
        grid_sync(a.barrier, target);
        attention_stage(l);
        stage_op(l.attn_output, &op);
        grid_sync(a.barrier, target);
        matvec_stage(a, op, smem, ring, partial);
        stage_op(l.gate_up, &op);
        grid_sync(a.barrier, target);
        matvec_stage(a, op, smem, ring, partial);
        stage_op(l.down, &op);
        grid_sync(a.barrier, target);
        matvec_stage(a, op, smem, ring, partial);
        stage_op(i + 1 < a.n_layers ? a.layers[i + 1].qkv : *a.logits, &op);
        grid_sync(a.barrier, target);
    }
    matvec_stage(a, op, smem, ring, partial);
    leave_grid(a.barrier);
}

bool is_llama_family(const orcd_model_config &c) { return c.arch != ORCD_ARCH_GPT_OSS; }

// The ring's shape on this GPU: `per_sm` blocks an SM, each with x_bytes of staged x and the most
// slots of slot_bytes that leave room for the others (fewer than two: the ring does not fit).
struct RingShape {
    int slots = 0;
    size_t smem = 0;
};

orcd_status ring_shape(size_t x_bytes, uint32_t slot_bytes, int per_sm, RingShape *out) {
    int device = 0, per_sm_bytes = 0, optin = 0, reserved = 0;
    ORCD_CUDA(cudaGetDevice(&device));
    ORCD_CUDA(cudaDeviceGetAttribute(&per_sm_bytes, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    ORCD_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    ORCD_CUDA(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    cudaFuncAttributes attr{};
    ORCD_CUDA(cudaFuncGetAttributes(&attr, decode_persistent_kernel));
    long long fixed = static_cast<long long>(attr.sharedSizeBytes);
    long long dynamic = std::min<long long>(optin - fixed, per_sm_bytes / per_sm - reserved - fixed);
    long long ring = dynamic - static_cast<long long>(x_bytes);
    out->slots = ring > 0 ? int(std::min<long long>(kMaxSlots, ring / slot_bytes)) : 0;
    out->smem = x_bytes + size_t(out->slots) * slot_bytes;
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

size_t persistent_plan_bytes(const orcd_model_config &c, size_t weight_bytes) {
    if (!is_llama_family(c)) return 0;  // gpt-oss never takes the persistent kernel
    return size_t(c.block_count) * sizeof(DecodeLayer) + sizeof(FusedMatvec) +
           kBarrierWords * sizeof(unsigned) + max_chunks(c, weight_bytes, kMinSlotBytes) * sizeof(ChunkPlan) +
           (kMaxPlanBlocks + 1) * sizeof(int);
}

orcd_status persistent_plan_build(Allocator &alloc, Model &m, const Activations &a,
                                  const int *pos, int blocks_per_sm, size_t weight_bytes,
                                  cudaStream_t stream) {
    // Where the kernel cannot run as planned, the fused kernels take the step (the same ops).
    auto fused_instead = [&m] {
        m.decode = DecodePath::fused;
        return ORCD_OK;
    };
    Pass p{m, a, 1, pos, stream};
    int n = m.cfg.block_count, major = 0, sms = 0, per_sm = blocks_per_sm ? blocks_per_sm
                                                                            : kDefaultBlocksPerSm;
    ORCD_TRY(compute_major(&major));
    ORCD_TRY(multiprocessors(&sms));
    std::vector<DecodeLayer> layers(n);
    FusedMatvec logits = logits_op(p);
    ORCD_TRY(fused_matvec_check(&logits));
    size_t x_bytes = fused_matvec_smem(logits), widest = widest_row(logits);
    bool integer = logits.integer;
    for (int i = 0; i < n; ++i) {
        DecodeLayer &l = layers[i];
        l.qkv = qkv_op(p, i), l.attention = attention_op(p, i);
        l.attn_output = attn_output_op(p, i), l.gate_up = gate_up_op(p, i), l.down = down_op(p, i);
        for (FusedMatvec *op : {&l.qkv, &l.attn_output, &l.gate_up, &l.down}) {
            ORCD_TRY(fused_matvec_check(op));
            x_bytes = std::max(x_bytes, fused_matvec_smem(*op));
            widest = std::max(widest, widest_row(*op));
            integer = integer && op->integer;
        }
    }
    x_bytes = (x_bytes + 127) / 128 * 128;
    uint32_t slot_bytes =
        std::max<uint32_t>(kMinSlotBytes, uint32_t((2 * widest + kChunkSlack + 1023) / 1024 * 1024));
    RingShape shape;
    if (major >= 9) ORCD_TRY(ring_shape(x_bytes, slot_bytes, per_sm, &shape));
    // The ring needs the bulk copy engine (sm_90) and two slots; its rows are read by the
    // integer path's units only (ORCD_MATVEC=f32, or float weights, take the fused kernels).
    if (shape.slots < 2 || !integer) return fused_instead();
    ORCD_CUDA(cudaFuncSetAttribute(decode_persistent_kernel,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, int(shape.smem)));
    int fit = 0;
    ORCD_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, decode_persistent_kernel, kThreads,
                                                            shape.smem));
    if (fit < per_sm) return fused_instead();
    int blocks = per_sm * sms;
    std::vector<ChunkPlan> chunks;
    std::vector<int> first_chunk(blocks + 1);
    for (int b = 0; b < blocks; ++b) {
        first_chunk[b] = int(chunks.size());
        for (const DecodeLayer &l : layers)
            for (const FusedMatvec *op : {&l.qkv, &l.attn_output, &l.gate_up, &l.down})
                plan_chunks(*op, b, blocks, slot_bytes, &chunks);
        plan_chunks(logits, b, blocks, slot_bytes, &chunks);
    }
    first_chunk[blocks] = int(chunks.size());
    if (blocks > kMaxPlanBlocks || chunks.size() > max_chunks(m.cfg, weight_bytes, kMinSlotBytes))
        return fused_instead();  // past what the VRAM estimate counted
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
    ORCD_TRY(alloc.alloc(&plan.chunks, chunks.size(), "persistent decode plan (chunks)"));
    ORCD_TRY(alloc.alloc(&plan.first_chunk, first_chunk.size(), "persistent decode plan (chunks)"));
    ORCD_CUDA(cudaMemcpyAsync(plan.chunks, chunks.data(), chunks.size() * sizeof(ChunkPlan),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(plan.first_chunk, first_chunk.data(), first_chunk.size() * sizeof(int),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(dev_layers, layers.data(), n * sizeof(DecodeLayer),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(dev_logits, &logits, sizeof logits, cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemsetAsync(plan.barrier, 0, kBarrierWords * sizeof(unsigned), stream));
    // the host vectors die here: the copies must have left them
    ORCD_CUDA(cudaStreamSynchronize(stream));
    plan.layers = dev_layers, plan.logits = dev_logits;
    plan.blocks = blocks, plan.smem = shape.smem, plan.x = a.x, plan.pos = pos;
    plan.slots = shape.slots, plan.slot_bytes = slot_bytes, plan.x_bytes = uint32_t(x_bytes);
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
    PersistentArgs args{plan.layers, plan.logits,     plan.chunks,  plan.first_chunk, plan.barrier,
                        m.cfg.block_count, plan.slots, plan.slot_bytes, plan.x_bytes};
    return check(launch(decode_persistent_kernel, dim3(plan.blocks), dim3(kThreads), plan.smem,
                        stream, m.overlap, args),
                 "persistent decode kernel launch");
}

}  // namespace orcd
