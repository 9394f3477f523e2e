// cuda/src/options.cu's reading of the switches, compiled for the host with context.cu's error
// slot (tests/cuda/test_options_host.py): every switch's values and messages are checked on any
// machine, not only where an engine can be made.
#include "options.cuh"

extern "C" const char *orcd_last_error(void);

// The options the environment gives, in the order of Options' fields; the status returned.
extern "C" int options_host(int *out) {
    orcd::Options o;
    orcd_status status = orcd::options_from_env(&o);
    int values[] = {int(o.decode), o.decode_chosen, o.persistent_blocks_per_sm, o.graphs,
                    int(o.matvec), o.overlap, o.clusters, o.joint, o.fused.warps,
                    o.fused.stream, o.fused.hidden_q8, o.prefill_graphs, o.decode_ahead,
                    o.fused.format_kernels, o.split_steps, o.wide_tiles, o.dense_tiles,
                    o.wgmma, o.prefill_chunk};
    for (int i = 0; i < int(sizeof values / sizeof *values); ++i) out[i] = values[i];
    return status;
}
