// cuda/src/decode_plan.cu's chunks of weight rows, compiled for the host
// (tests/cuda/test_plan_host.py): on any machine, every block's chunks of an op cover its share
// in order, each chunk's pieces are whole 16-byte units that fit a slot, and every row of every
// pair lies whole in the piece where the persistent kernel's staged_row looks for it. The plan
// only does arithmetic on the weights' addresses, so the parts here are made-up addresses.
#include <cstdarg>
#include <cstdio>
#include <vector>
#include "decode_plan.cuh"

using namespace orcd;

namespace {

int fail_check(char *err, int err_len, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(err, size_t(err_len), fmt, args);
    va_end(args);
    return -1;
}

}  // namespace

// An op of `parts` parts (ggml types, rows), `cols` wide: epilogue 0 qkv (heads, kv_heads,
// head_dim, rope dims, neox), 1 swiglu (gate rows, then up rows), 2 residual. Each part starts
// at an address of its own, 16-byte aligned plus `offset` * 16 bytes. Returns the chunks of every
// block, or -1 with the first broken rule in err.
extern "C" int plan_host(int epilogue, int parts, const int *types, const long long *rows, int cols,
                         int heads, int kv_heads, int head_dim, int rope_dims, int neox, int blocks,
                         unsigned slot_bytes, int offset, char *err, int err_len) {
    FusedMatvec op{};
    op.epilogue = epilogue == 0 ? Epilogue::qkv : epilogue == 1 ? Epilogue::swiglu : Epilogue::residual;
    op.cols = cols;
    op.parts = parts;
    uintptr_t at = uintptr_t(1) << 30;
    size_t bytes_total = 0;
    for (int i = 0; i < parts; ++i) {
        op.w[i].type = types[i];
        op.w[i].ne0 = cols, op.w[i].ne1 = rows[i];
        op.w[i].data = reinterpret_cast<const void *>(at + 16 * offset);
        size_t bytes = row_bytes_of(types[i], cols) * size_t(rows[i]);
        bytes_total += bytes;
        at += (bytes + 16 * offset + (1 << 20)) & ~uintptr_t(255);
    }
    op.kv.shape = {heads, kv_heads, head_dim, 256};
    op.kv.rope.dims = rope_dims;
    op.kv.rope.neox = neox != 0;
    int total = total_rows(op), chunks = 0;
    for (int b = 0; b < blocks; ++b) {
        std::vector<ChunkPlan> plan;
        plan_chunks(op, b, blocks, slot_bytes, &plan);
        Share share = share_of(op, b, blocks);
        int next = share.begin;
        for (const ChunkPlan &c : plan) {
            if (c.pair0 != next || c.pair1 <= c.pair0)
                return fail_check(err, err_len, "block %d: chunk [%d, %d) after pair %d", b, c.pair0,
                                  c.pair1, next);
            next = c.pair1;
            for (int k = 0; k < 2; ++k)
                if (reinterpret_cast<uintptr_t>(c.src[k]) % 16 || c.bytes[k] % 16)
                    return fail_check(err, err_len, "block %d, pairs [%d, %d): piece %d not in 16-byte units",
                                      b, c.pair0, c.pair1, k);
            if (c.bytes[0] == 0 || size_t(c.bytes[0]) + c.bytes[1] > slot_bytes)
                return fail_check(err, err_len, "block %d, pairs [%d, %d): %u + %u bytes in a slot of %u",
                                  b, c.pair0, c.pair1, c.bytes[0], c.bytes[1], slot_bytes);
            if (c.bytes[1] && c.src[1] < c.src[0] + c.bytes[0] && c.src[0] < c.src[1] + c.bytes[1])
                return fail_check(err, err_len, "block %d, pairs [%d, %d): its pieces overlap", b,
                                  c.pair0, c.pair1);
            for (int p = c.pair0; p < c.pair1; ++p) {
                Pair pair = pair_of(op, p, total);
                for (int row : {pair.row0, pair.row1}) {
                    int r = row, part = part_of(op, r);
                    size_t rb = row_bytes_of(op.w[part].type, cols);
                    const uint8_t *w = static_cast<const uint8_t *>(op.w[part].data) + rb * r;
                    bool second = c.bytes[1] && w >= c.src[1] && w < c.src[1] + c.bytes[1];
                    const uint8_t *lo = c.src[second], *hi = lo + c.bytes[second];
                    if (w < lo || w + rb > hi)
                        return fail_check(err, err_len, "block %d, pairs [%d, %d): row %d of pair %d "
                                          "is not whole in piece %d", b, c.pair0, c.pair1, row, p,
                                          int(second));
                }
            }
        }
        if (next != share.end)
            return fail_check(err, err_len, "block %d: chunks end at pair %d, its share at %d", b,
                              next, share.end);
        chunks += int(plan.size());
    }
    orcd_model_config c{};
    c.block_count = 1, c.head_count = heads, c.head_count_kv = kv_heads;
    if (size_t(chunks) > max_chunks(c, bytes_total, slot_bytes))
        return fail_check(err, err_len, "%d chunks, past the bound of %zu", chunks,
                          max_chunks(c, bytes_total, slot_bytes));
    return chunks;
}
