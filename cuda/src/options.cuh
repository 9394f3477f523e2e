// The library's run-time switches, read from the environment in one place (options.cu): once
// at engine creation, for the engine's lifetime, and at each call of the kernel test API
// (kernel_api.cu), which has no engine.
//   ORCD_FUSED       the decode step of one token: "1" (the fused kernels, five launches per
//                    layer, decode_fused.cu), "persistent" (one persistent kernel walks the
//                    whole step, its blocks streaming their weight rows into shared memory ahead
//                    of the stages, decode_persistent.cu; llama family, sm_90, the integer
//                    path, else "1"; slower than "1" today, so never chosen unasked) or "0"
//                    (step by step, llama.cu and gpt_oss.cu). Unset: "1" where the model fits
//                    it, else "0".
//   ORCD_PERSISTENT_BLOCKS  blocks per SM of the persistent decode kernel, 1 to 4 (unset: 1);
//                    where that many do not fit an SM (registers, or a ring of two slots each),
//                    the fused kernels run instead.
//   ORCD_FUSED_WARPS warps per block of the fused decode matvecs: unset or "8", "4", "2" (at
//                    least the warps that share one pair of rows), or "spread": the most that
//                    still give every SM a block. Fewer warps spread a small matrix over more
//                    SMs; more share one staging of x, a shorter chain per warp, which the H200
//                    prefers (Qwen2.5-0.5B shape: 8 warps 1,124 t/s, spread 1,083). The same bits.
//   ORCD_FUSED_STREAM "0": each warp of a fused decode matvec loads a pair's rows after x is
//                    staged, one pair after another; unset or "1": where every part has one
//                    format with small units, its first pair's rows before it waits for the
//                    kernel before it, and each next pair's while it dots the current one
//                    (fused_stage.cuh's streamed_pairs). The same bits.
//   ORCD_HIDDEN_Q8   unset or "0": the gate/up step leaves the hidden vector as floats and
//                    ffn_down's blocks each round it to Q8_1 as they stage it; "1": the gate/up
//                    step's last warp of each 32 outputs rounds them once (a fence and an atomic
//                    count per pair of outputs; with 8 warps slower on the H200, 1,124 against
//                    1,143 t/s). The same bits.
//   ORCD_FUSED_FORMAT "0": every fused decode matvec runs the one kernel that holds every
//                    weight format's code (25,672 instructions on sm_90, whose warps waited on
//                    instruction fetch); unset or "1": an op whose parts share a format runs a
//                    kernel of that format only (about 4,000), which a layer's ops of that
//                    format share, and one that mixes Q5_0 with Q8_0 or Q4_K with Q6_K (a
//                    K-quant mix's q, k beside v) a kernel of those two (fused.cu). A kernel
//                    per format and epilogue (about 3,600) was slower on the H200 (SmolLM2
//                    1,444 t/s against 1,672): each op's kernel then met a cold instruction
//                    cache. The same bits.
//   ORCD_CUDA_GRAPH  "0": the decode step is launched kernel by kernel instead of replayed
//                    from a CUDA graph (and so is a short prompt's prefill, ORCD_PREFILL_GRAPH).
//   ORCD_PREFILL_GRAPH "0": a prompt chunk of up to kGraphedPrefillRows tokens is launched
//                    kernel by kernel; unset or "1": its layers are replayed from a CUDA graph
//                    captured once per size bucket (decode.cu), its launches (about ten a layer)
//                    costing the host one. The same bits.
//   ORCD_DECODE_AHEAD "0": the decode loop launches step k + 1 once it has read id k; unset or
//                    "1": before it reads it (the sampler advances the step on the device), so
//                    that the GPU does not wait for the host between steps. A grammar-constrained
//                    job always waits: its next mask needs id k. The same ids.
//   ORCD_MATVEC      "f32": quantized weights meet F32 activations (the plain path); unset,
//                    empty or "q8_1": activations rounded to Q8_1 meet them in integers.
//   ORCD_OVERLAP     "0": each fused decode kernel, and each kernel of a prefill chunk launched
//                    kernel by kernel (not from a graph), starts when the one before it has ended. Unset or "1": on sm_90 and later
//                    they are launched to overlap their predecessor (programmatic dependent
//                    launch, overlap.cuh); the decode kernels prefetch their weights into L2
//                    meanwhile.
//   ORCD_CLUSTERS    "0": a short prompt's split matmul adds its splits' sums through global
//                    memory and an atomic arrival count (the sm_80 way) instead of inside a
//                    thread-block cluster's shared memory (sm_90, the default there).
//   ORCD_SPLIT_STEPS "0": a short prompt's clustered split matmul loads each split's tiles at
//                    once (eight warps a block, 59 KB of shared memory: three blocks an SM),
//                    and where a block a split would take more than one wave of the GPU, a
//                    block takes two or more splits one after another, as few blocks as fill
//                    a wave (slower on the H200: Qwen2.5-0.5B shape, first id of a 64-token
//                    prompt 3.70 against 2.73 ms). Unset or "1": there (its gate/up of a
//                    24-token turn: 608 blocks) a block of four warps walks its split in steps
//                    of 64 columns (36 KB: five an SM). Past 8 splits (ffn_down) a block takes
//                    several splits either way. The same bits either way.
//   ORCD_WIDE_TILES  "0": a long prompt's matmul takes tiles of 64 tokens x 64 rows, four warps a
//                    block; unset or "1": tiles of 128 x 128, eight warps a block, where those
//                    alone give every SM a block (matmul.cu's matmul_wide_kernel). The same bits.
//   ORCD_DENSE_TILES "0": those wide tiles dequantize W run by run as they load it; unset or
//                    "1": W is dequantized to F16 in scratch (a slab of up to 64 MB of rows at a
//                    time) and X rounded to F16, then multiplied with cp.async stages and
//                    mma.sync (matmul_dense.cu). The same bits.
//   ORCD_PREFILL_CHUNK prompt tokens a prefill pass takes at most: a multiple of 64 from 64 to
//                    8,192 (unset: orcd_cuda.h's ORCD_PREFILL_CHUNK, the CPU engine's chunk). The
//                    prefill activations and the VRAM estimate grow with it; a longer prompt is
//                    prefilled in passes of this many tokens, each reading every weight once.
//   ORCD_JOINT       "0": each weight tensor in an allocation of its own; unset or "1": a
//                    layer's q, k, v and its gate, up placed side by side at load where they
//                    share a format, so that one matmul launch multiplies each group
//                    (model.cu's joint_tensors; the same bits either way).
//   ORCD_FAULT       test-only, alloc:N: read by each Allocator when it is made (alloc.cuh).
#pragma once
#include "common.cuh"

namespace orcd {

enum class DecodePath { steps, fused, persistent };
enum class MatvecPath { q8_1, f32 };

// How the fused decode matvecs share out their work (ORCD_FUSED_WARPS, ORCD_FUSED_STREAM,
// ORCD_HIDDEN_Q8, ORCD_FUSED_FORMAT): the same bits whatever the values.
struct FusedTuning {
    int warps = 8;           // warps per block; 0: spread over every SM
    bool stream = true;      // warps load their next rows ahead
    bool hidden_q8 = false;  // gate/up rounds the hidden vector to Q8_1 for ffn_down
    bool format_kernels = true;  // a kernel per weight format where an op's parts share one
};

struct Options {
    DecodePath decode = DecodePath::fused;
    bool decode_chosen = false;  // ORCD_FUSED set: take that path or, where it does not fit, steps
    int persistent_blocks_per_sm = 0;  // 0: the default (decode_persistent.cu)
    bool graphs = true;
    bool prefill_graphs = true;  // where graphs are on
    bool decode_ahead = true;
    MatvecPath matvec = MatvecPath::q8_1;
    bool overlap = true;  // where the device has it (sm_90 and later)
    bool clusters = true;  // the same
    bool split_steps = true;  // a split launch past one wave walks its splits in steps
    bool wide_tiles = true;   // a long prompt's matmul in tiles of 128 x 128
    bool dense_tiles = true;  // ... from W dequantized to F16 in scratch
    bool wgmma = true;        // ... and the experts' (moe.cu) on wgmma where built (sm_90a)
    bool joint = true;     // q, k, v (gate, up) placed side by side at load: one launch
    int prefill_chunk = ORCD_PREFILL_CHUNK;  // prompt tokens a prefill pass takes at most
    FusedTuning fused;
};

// ORCD_ERR_INVALID naming the variable for a value it does not take.
orcd_status options_from_env(Options *out);

// The environment's options, or the defaults where it holds a value they do not take (for an
// estimate made before the engine that would report it).
Options options_or_defaults();

}  // namespace orcd
