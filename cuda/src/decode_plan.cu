// The persistent decode kernel's plan of weight rows (decode_plan.cuh): host code.
#include <algorithm>
#include "decode_plan.cuh"

namespace orcd {
namespace {

uintptr_t row_address(const FusedMatvec &op, int row, size_t *bytes) {
    int part = part_of(op, row);
    *bytes = row_bytes_of(op.w[part].type, op.cols);
    return reinterpret_cast<uintptr_t>(op.w[part].data) + *bytes * row;
}

// The end of the chunk that starts at pair c0: at most as many pairs as one slot holds (two runs
// of rows each as wide as the widest part's), and for qkv one head and one side of its rotated
// features, so that the pairs' first rows are one run of consecutive rows and their second
// rows another (qkv_pair; so are gate's and up's, and a residual's pairs are consecutive rows).
int chunk_end(const FusedMatvec &op, int c0, int end, uint32_t slot_bytes) {
    int per_chunk = std::max(1, int((slot_bytes - kChunkSlack) / (2 * widest_row(op))));
    int c1 = std::min(end, c0 + per_chunk);
    if (op.epilogue == Epilogue::qkv) {
        Pair r = qkv_pair(op, c0);
        int run = r.rotate ? op.kv.rope.dims / 2 : op.kv.shape.head_dim / 2;
        c1 = std::min(c1, c0 - r.i + run);
    }
    return c1;
}

ChunkPlan chunk_of(const FusedMatvec &op, int c0, int c1) {
    int rows = total_rows(op);
    Pair first = pair_of(op, c0, rows), last = pair_of(op, c1 - 1, rows);
    size_t bytes;
    uintptr_t s0 = row_address(op, first.row0, &bytes) & ~uintptr_t(15);
    uintptr_t e0 = (row_address(op, last.row0, &bytes) + bytes + 15) & ~uintptr_t(15);
    uintptr_t s1 = row_address(op, first.row1, &bytes) & ~uintptr_t(15);
    uintptr_t e1 = (row_address(op, last.row1, &bytes) + bytes + 15) & ~uintptr_t(15);
    ChunkPlan c{};
    c.pair0 = c0, c.pair1 = c1;
    if (s1 <= e0 && s0 <= e1) {  // the runs meet: one piece
        s0 = std::min(s0, s1), e0 = std::max(e0, e1);
        s1 = e1 = 0;
    }
    c.src[0] = reinterpret_cast<const uint8_t *>(s0), c.bytes[0] = uint32_t(e0 - s0);
    c.src[1] = reinterpret_cast<const uint8_t *>(s1), c.bytes[1] = uint32_t(e1 - s1);
    return c;
}

}  // namespace

size_t row_bytes_of(int ggml_type, int cols) {
    size_t bytes = 0;
    (void)with_format(ggml_type, [&](auto f) {
        bytes = row_bytes<decltype(f)>(cols);
        return ORCD_OK;
    });
    return bytes;
}

size_t widest_row(const FusedMatvec &op) {
    size_t widest = 0;
    for (int i = 0; i < op.parts; ++i) widest = std::max(widest, row_bytes_of(op.w[i].type, op.cols));
    return widest;
}

void plan_chunks(const FusedMatvec &op, int block, int blocks, uint32_t slot_bytes,
                 std::vector<ChunkPlan> *out) {
    Share s = share_of(op, block, blocks);
    for (int c0 = s.begin, c1; c0 < s.end; c0 = c1) {
        c1 = chunk_end(op, c0, s.end, slot_bytes);
        out->push_back(chunk_of(op, c0, c1));
    }
}

// Every op's pairs in chunks at least a quarter full (a slot holds runs as wide as the widest
// part's, at most twice the narrowest format's), one partial chunk per op a block, one more per
// run of a qkv head.
size_t max_chunks(const orcd_model_config &c, size_t weight_bytes, uint32_t min_slot_bytes) {
    size_t ops = size_t(kOpsPerLayer) * c.block_count + 1;
    size_t runs = size_t(c.block_count) * 2 * (c.head_count + 2 * c.head_count_kv);
    return 4 * weight_bytes / (min_slot_bytes - kChunkSlack) + kMaxPlanBlocks * ops + runs;
}

}  // namespace orcd
