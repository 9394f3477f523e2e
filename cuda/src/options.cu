// options.cuh's switches from the environment.
#include <cstdlib>
#include <cstring>
#include "options.cuh"

namespace orcd {
namespace {

bool is(const char *v, const char *want) { return v && std::strcmp(v, want) == 0; }

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
    const char *overlap = std::getenv("ORCD_OVERLAP");
    if (is(overlap, "0")) o.overlap = false;
    else if (overlap && *overlap && !is(overlap, "1"))
        return fail(ORCD_ERR_INVALID, "ORCD_OVERLAP=%s: use 0 (each decode kernel after the "
                    "last) or 1 (overlapping launches, the default)", overlap);
    const char *clusters = std::getenv("ORCD_CLUSTERS");
    if (is(clusters, "0")) o.clusters = false;
    else if (clusters && *clusters && !is(clusters, "1"))
        return fail(ORCD_ERR_INVALID, "ORCD_CLUSTERS=%s: use 0 (split sums through global "
                    "memory) or 1 (through a cluster's shared memory, the default)", clusters);
    const char *joint = std::getenv("ORCD_JOINT");
    if (is(joint, "0")) o.joint = false;
    else if (joint && *joint && !is(joint, "1"))
        return fail(ORCD_ERR_INVALID, "ORCD_JOINT=%s: use 0 (a tensor an allocation) or 1 (q, k, "
                    "v and gate, up side by side, the default)", joint);
    const char *warps = std::getenv("ORCD_FUSED_WARPS");
    if (is(warps, "2") || is(warps, "4") || is(warps, "8")) o.fused_warps = std::atoi(warps);
    else if (is(warps, "spread")) o.fused_warps = 0;
    else if (warps && *warps)
        return fail(ORCD_ERR_INVALID, "ORCD_FUSED_WARPS=%s: use 2, 4 or 8 (warps per fused "
                    "matvec block; 8 is the default) or spread (over every SM)", warps);
    const char *stream = std::getenv("ORCD_FUSED_STREAM");
    if (is(stream, "0")) o.fused_stream = false;
    else if (stream && *stream && !is(stream, "1"))
        return fail(ORCD_ERR_INVALID, "ORCD_FUSED_STREAM=%s: use 0 (rows loaded pair by pair) or "
                    "1 (loaded ahead, the default)", stream);
    const char *hidden = std::getenv("ORCD_HIDDEN_Q8");
    if (is(hidden, "1")) o.hidden_q8 = true;
    else if (hidden && *hidden && !is(hidden, "0"))
        return fail(ORCD_ERR_INVALID, "ORCD_HIDDEN_Q8=%s: use 0 (ffn_down rounds the hidden "
                    "vector itself, the default) or 1 (gate/up rounds it once)", hidden);
    const char *m = std::getenv("ORCD_MATVEC");
    if (is(m, "f32")) o.matvec = MatvecPath::f32;
    else if (m && *m && !is(m, "q8_1"))
        return fail(ORCD_ERR_INVALID, "ORCD_MATVEC=%s: use f32 (plain float path) or q8_1 (integer "
                    "path, the default)", m);
    *out = o;
    return ORCD_OK;
}

}  // namespace orcd
