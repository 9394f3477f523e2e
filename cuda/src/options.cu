// options.cuh's switches from the environment.
#include <cstdlib>
#include <cstring>
#include "options.cuh"

namespace orcd {
namespace {

constexpr int kMaxPrefillChunk = 8192;  // printed with %d

bool is(const char *v, const char *want) { return v && std::strcmp(v, want) == 0; }

// A switch of two values, "0" (off) and "1" (on), each with what it means; unset or empty
// leaves *value, the default, as it is.
orcd_status on_off(const char *name, const char *off, const char *on, bool *value) {
    const char *v = std::getenv(name);
    if (!v || !*v) return ORCD_OK;
    if (is(v, "0") || is(v, "1")) {
        *value = is(v, "1");
        return ORCD_OK;
    }
    const char *dflt = ", the default";
    return fail(ORCD_ERR_INVALID, "%s=%s: use 0 (%s%s) or 1 (%s%s)", name, v, off,
                *value ? "" : dflt, on, *value ? dflt : "");
}

}  // namespace

orcd_status options_from_env(Options *out) {
    Options o;
    const char *fused = std::getenv("ORCD_FUSED");
    if (fused && *fused) {
        o.decode_chosen = true;
        if (is(fused, "0")) o.decode = DecodePath::steps;
        else if (is(fused, "1")) o.decode = DecodePath::fused;
        else if (is(fused, "persistent")) o.decode = DecodePath::persistent;
        else return fail(ORCD_ERR_INVALID, "ORCD_FUSED=%s: use persistent (one kernel per decode "
                         "step), 1 (fused kernels) or 0 (step by step)", fused);
    }
    if (const char *b = std::getenv("ORCD_PERSISTENT_BLOCKS"); b && *b) {
        o.persistent_blocks_per_sm = std::atoi(b);
        if (o.persistent_blocks_per_sm < 1 || o.persistent_blocks_per_sm > 4)
            return fail(ORCD_ERR_INVALID, "ORCD_PERSISTENT_BLOCKS=%s: use 1 to 4 blocks per SM", b);
    }
    o.graphs = !is(std::getenv("ORCD_CUDA_GRAPH"), "0");
    ORCD_TRY(on_off("ORCD_PREFILL_GRAPH", "a short prefill launched kernel by kernel",
                    "replayed from a graph", &o.prefill_graphs));
    ORCD_TRY(on_off("ORCD_DECODE_AHEAD", "step k + 1 launched once id k is read",
                    "launched before", &o.decode_ahead));
    ORCD_TRY(on_off("ORCD_OVERLAP", "each decode kernel after the last", "overlapping launches",
                    &o.overlap));
    ORCD_TRY(on_off("ORCD_CLUSTERS", "split sums through global memory",
                    "through a cluster's shared memory", &o.clusters));
    ORCD_TRY(on_off("ORCD_SPLIT_STEPS", "each split's tiles loaded at once",
                    "walked in steps where the blocks take more than a wave", &o.split_steps));
    ORCD_TRY(on_off("ORCD_WIDE_TILES", "a long prompt's matmul in tiles of 64 x 64",
                    "in tiles of 128 x 128", &o.wide_tiles));
    ORCD_TRY(on_off("ORCD_DENSE_TILES", "wide tiles dequantized as they load",
                    "wide tiles from W in F16", &o.dense_tiles));
    ORCD_TRY(on_off("ORCD_WGMMA", "the dense product and the experts' on mma.sync",
                    "on wgmma where the GPU and build have it", &o.wgmma));
    ORCD_TRY(on_off("ORCD_JOINT", "a tensor an allocation", "q, k, v and gate, up side by side",
                    &o.joint));
    if (const char *c = std::getenv("ORCD_PREFILL_CHUNK"); c && *c) {
        char *end = nullptr;
        long rows = std::strtol(c, &end, 10);
        if (*end || rows < 64 || rows > kMaxPrefillChunk || rows % 64)
            return fail(ORCD_ERR_INVALID, "ORCD_PREFILL_CHUNK=%s: use a multiple of 64 from 64 to "
                        "%d (prompt tokens a prefill pass takes; %d is the default)", c,
                        kMaxPrefillChunk, ORCD_PREFILL_CHUNK);
        o.prefill_chunk = int(rows);
    }
    const char *warps = std::getenv("ORCD_FUSED_WARPS");
    if (is(warps, "2") || is(warps, "4") || is(warps, "8")) o.fused.warps = std::atoi(warps);
    else if (is(warps, "spread")) o.fused.warps = 0;
    else if (warps && *warps)
        return fail(ORCD_ERR_INVALID, "ORCD_FUSED_WARPS=%s: use 2, 4 or 8 (warps per fused "
                    "matvec block; 8 is the default) or spread (over every SM)", warps);
    ORCD_TRY(on_off("ORCD_FUSED_STREAM", "rows loaded pair by pair", "loaded ahead",
                    &o.fused.stream));
    ORCD_TRY(on_off("ORCD_FUSED_FORMAT", "one fused decode kernel for every weight format",
                    "a kernel per format", &o.fused.format_kernels));
    ORCD_TRY(on_off("ORCD_HIDDEN_Q8", "ffn_down rounds the hidden vector itself",
                    "gate/up rounds it once", &o.fused.hidden_q8));
    const char *m = std::getenv("ORCD_MATVEC");
    if (is(m, "f32")) o.matvec = MatvecPath::f32;
    else if (m && *m && !is(m, "q8_1"))
        return fail(ORCD_ERR_INVALID, "ORCD_MATVEC=%s: use f32 (plain float path) or q8_1 (integer "
                    "path, the default)", m);
    *out = o;
    return ORCD_OK;
}

Options options_or_defaults() {
    Options o;
    return options_from_env(&o) == ORCD_OK ? o : Options{};
}

}  // namespace orcd
