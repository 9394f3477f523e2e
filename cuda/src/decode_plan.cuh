// The persistent decode kernel's plan of weight rows (decode_persistent.cu): which bytes of
// each op's weights a block copies into which slot of its ring, planned once at load
// (decode_plan.cu, host code: tests/cuda/test_plan_host.py checks it on any machine).
#pragma once
#include <cstdint>
#include <vector>
#include "fused_stage.cuh"

namespace orcd {

// Pairs [pair0, pair1) of an op's share, in one slot: the run of their first rows and the run of
// their second rows, each [src, src + bytes) rounded out to 16 bytes, at offsets 0 and bytes[0]
// of the slot; bytes[1] == 0 where the runs meet and one piece holds both (a residual's
// consecutive rows).
struct __align__(16) ChunkPlan {
    const uint8_t *src[2];
    uint32_t bytes[2];
    int pair0, pair1;
};

// Bytes a chunk's two pieces may gain by starting and ending on 16-byte boundaries: a slot
// holds at least two of the widest rows and this.
constexpr uint32_t kChunkSlack = 64;
// The ops with weights a layer: qkv, attn_output, gate_up, down (then the logits, once).
constexpr int kOpsPerLayer = 4;
// At most this many blocks take the persistent kernel (4 an SM on up to 160 SMs): the bound of
// the plan's chunks that the VRAM estimate counts (max_chunks).
constexpr int kMaxPlanBlocks = 640;

// Block `block`'s pairs [begin, end) of an op, of `blocks`.
struct Share {
    int begin, end;
};

__host__ __device__ __forceinline__ Share share_of(const FusedMatvec &op, int block, int blocks) {
    long long pairs = (total_rows(op) + 1) / 2;
    return {int(pairs * block / blocks), int(pairs * (block + 1) / blocks)};
}

// Bytes of a row of `cols` values in a vetted ggml format (fused_matvec_check's).
size_t row_bytes_of(int ggml_type, int cols);
// The widest row of an op's parts, in bytes.
size_t widest_row(const FusedMatvec &op);

// Block `block`'s chunks of an op, in the order its stage takes them, appended to *out: slots
// of slot_bytes (at least 2 * widest_row(op) + kChunkSlack).
void plan_chunks(const FusedMatvec &op, int block, int blocks, uint32_t slot_bytes,
                 std::vector<ChunkPlan> *out);

// More chunks than a plan can have, for a model whose weights take weight_bytes, in slots of at
// least min_slot_bytes and at most kMaxPlanBlocks blocks.
size_t max_chunks(const orcd_model_config &c, size_t weight_bytes, uint32_t min_slot_bytes);

}  // namespace orcd
