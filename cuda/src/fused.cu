// The fused decode matvec (fused.cuh) as kernels of its own: fused_stage.cuh's blocks, launched
// with a grid shaped by the matrix.
#include <algorithm>
#include "context.cuh"
#include "fused_stage.cuh"
#include "ops.cuh"
#include "overlap.cuh"

namespace orcd {
namespace {

constexpr int kMaxWarps = 8;
constexpr int kMinBlocks = 2;
constexpr int kBlocksPerSm = kMinBlocks;  // resident at once: more would wait for a second wave

using FusedKernel = void (*)(const FusedMatvec);

// The op's small constant inputs into L2, one vector per thread of block 0's first warp: the
// norm's weights, the biases, rope's frequencies.
__device__ inline void prefetch_constants(const FusedMatvec &op) {
    if (blockIdx.x != 0) return;
    int rows = total_rows(op);
    const AttentionShape &s = op.kv.shape;
    switch (threadIdx.x) {
        case 0: prefetch_vector(op.norm, sizeof(float) * op.cols); return;
        case 1: prefetch_vector(op.bias, sizeof(float) * rows); return;
        case 2: prefetch_vector(op.kv.bias[0], sizeof(float) * s.heads * s.head_dim); return;
        case 3: prefetch_vector(op.kv.bias[1], sizeof(float) * s.kv_heads * s.head_dim); return;
        case 4: prefetch_vector(op.kv.bias[2], sizeof(float) * s.kv_heads * s.head_dim); return;
        case 5:
            if (op.epilogue == Epilogue::qkv)
                prefetch_vector(op.kv.rope.inv_freq, sizeof(double) * (op.kv.rope.dims / 2));
            return;
        default: return;
    }
}

// At least kMinBlocks blocks of kMaxWarps per SM (<= 128 registers): as in matvec.cu, the bound
// lets ptxas keep every load of a step in flight rather than sink each to its use. Launched to
// overlap its predecessor (op.overlap), the kernel first asks L2 for the start of its weights
// (op.prefetch[i] bytes of part i) and its constants; fused_matvec_block then loads its first
// rows and waits for the predecessor's activations.
template <bool Int, int Steps, class Only>
__global__ void __launch_bounds__(kMaxWarps * 32, kMinBlocks)
fused_matvec_kernel(const FusedMatvec op) {
    extern __shared__ __align__(16) uint8_t smem[];
    for (int i = 0; i < op.parts; ++i)
        prefetch_share(op.w[i].data, op.prefetch[i], blockIdx.x, gridDim.x);
    if (op.overlap) prefetch_constants(op);
    allow_next_kernel();
    fused_matvec_block<Int, Steps, Only>(op, smem, blockIdx.x, gridDim.x);
}

}  // namespace

orcd_status fused_matvec_check(FusedMatvec *op_) {
    FusedMatvec &op = *op_;
    bool integer = true;
    if (op.parts < 1 || op.parts > 3 || op.cols > kFusedMaxCols)
        return fail(ORCD_ERR_INVALID, "fused matvec: %d parts of %d columns (at most 3 of %d)",
                    op.parts, op.cols, kFusedMaxCols);
    for (int i = 0; i < op.parts; ++i) {
        const Tensor &t = op.w[i];
        if (t.ne0 != op.cols || t.ne1 < 1)
            return fail(ORCD_ERR_INVALID, "fused matvec: part %d is [%lld, %lld], not %d wide",
                        i, (long long)t.ne0, (long long)t.ne1, op.cols);
        ORCD_TRY(with_format(t.type, [&](auto f) {
            using F = decltype(f);
            integer = integer && F::integer_dot;
            return check_row<F>(op.cols, "fused matvec");
        }));
    }
    if (op.epilogue == Epilogue::swiglu && op.parts == 2 && op.w[0].type != op.w[1].type)
        return fail(ORCD_ERR_INVALID, "fused matvec: gate (type %d) and up (type %d) differ",
                    op.w[0].type, op.w[1].type);
    op.integer = integer && op.path == MatvecPath::q8_1;
    return ORCD_OK;
}

size_t fused_matvec_smem(const FusedMatvec &op) {
    size_t cols = size_t(op.cols);
    return op.integer ? cols + cols / 32 * sizeof(block_q8_1_scale) : cols * sizeof(float);
}

namespace {

// Warps that share a pair: as many as give each lane at most kFusedSteps units of a row (one
// pass, the shortest chain of loads and dots), up to a block.
int split_for(int cols) {
    int units = cols / 32, split = 1;
    while (split < kMaxWarps && 32 * kFusedSteps * split < units) split *= 2;
    return split;
}

// Units of a row a lane loads before it dots the first: one where a single pass of the group
// covers the row (Qwen2.5-0.5B's 896-wide rows, 28 units), where a second step would only
// repeat the last unit.
int steps_for(int cols, int split) { return cols / 32 <= 32 * split ? 1 : kFusedSteps; }

// Warps per block: `wanted` (at least one group of `split`), or where 0 the most (x staged
// once for more pairs) that still gives every SM a block, and at least one group. Blocks: at
// most kBlocksPerSm per SM, whose groups then take further pairs, so that a large matrix (the
// output's vocabulary) does not stage x once per few pairs.
orcd_status launch_shape(int pairs, int split, int wanted, int *warps, unsigned *blocks) {
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    int least = std::max(2, split);
    *warps = std::max(least, wanted);
    for (int cand : {kMaxWarps, 4}) {
        int groups = cand / split;
        if (!wanted && *warps == least && cand >= split && (pairs + groups - 1) / groups >= sms)
            *warps = cand;
    }
    int groups = *warps / split;
    *blocks = unsigned(std::min((pairs + groups - 1) / groups, kBlocksPerSm * sms));
    return ORCD_OK;
}

// The kernel of formats Only for rows of `steps` steps of a group (steps_for).
template <bool Int, class Only>
FusedKernel kernel_of(int steps) {
    return steps == 1 ? fused_matvec_kernel<Int, 1, Only>
                      : fused_matvec_kernel<Int, kFusedSteps, Only>;
}

// The kernel for the op. On the integer path, where its parts share a format
// (op.format_kernels, ORCD_FUSED_FORMAT), one that holds that format's code only and, in one
// step of a group (every 896- or 576-wide matrix) where the rows are streamed, that way of
// loading them only (fused_stage.cuh): a layer's ops of one format share it. Where they mix
// two formats as the K-quant mixes' q, k and v do, one of those two. Else the kernel of every
// format.
FusedKernel kernel_for(const FusedMatvec &op, int steps) {
    if (!op.integer) return kernel_of<false, AnyFormat>(steps);
    FusedKernel any = kernel_of<true, AnyFormat>(steps);
    if (!op.format_kernels) return any;
    int first = op.w[0].type, other = first;
    for (int i = 1; i < op.parts; ++i)
        if (op.w[i].type != first) {
            if (other != first && op.w[i].type != other) return any;
            other = op.w[i].type;
        }
    if (other != first) {  // the K-quant mixes' q, k beside v
        if (first == GGML_Q5_0 && other == GGML_Q8_0)
            return kernel_of<true, FormatPair<fmt::Q5_0, fmt::Q8_0>>(steps);
        if (first == GGML_Q4_K && other == GGML_Q6_K)
            return kernel_of<true, FormatPair<fmt::Q4_K, fmt::Q6_K>>(steps);
        return any;
    }
    FusedKernel kernel = any;
    (void)with_format(op.w[0].type, [&](auto f) {
        using F = decltype(f);
        // a streamed format's one-step kernel streams whenever it runs: not for an op that
        // may not (ORCD_FUSED_STREAM=0)
        if constexpr (F::integer_dot)
            if (steps != 1 || !always_streamed<F>() || op.streamed)
                kernel = kernel_of<true, F>(steps);
        return ORCD_OK;
    });
    return kernel;
}

}  // namespace

orcd_status fused_matvec(const FusedMatvec &op_, cudaStream_t stream) {
    FusedMatvec op = op_;
    ORCD_TRY(fused_matvec_check(&op));
    int rows = 0, warps = 2;
    for (int i = 0; i < op.parts; ++i) rows += int(op.w[i].ne1);
    unsigned blocks = 0;
    op.split = split_for(op.cols);
    ORCD_TRY(launch_shape((rows + 1) / 2, op.split, op.block_warps, &warps, &blocks));
    size_t smem = fused_matvec_smem(op);
    for (int i = 0; i < op.parts; ++i) {
        size_t bytes = 0;
        ORCD_TRY(with_format(op.w[i].type, [&](auto f) {
            bytes = row_bytes<decltype(f)>(op.cols) * size_t(op.w[i].ne1);
            return ORCD_OK;
        }));
        op.prefetch[i] = op.overlap ? std::min(bytes, kFusedPrefetchBytes / op.parts) : 0;
    }
    FusedKernel kernel = kernel_for(op, steps_for(op.cols, op.split));
    return check(launch(kernel, blocks, warps * 32, smem, stream, op.overlap, op),
                 "fused matvec kernel launch");
}

}  // namespace orcd
