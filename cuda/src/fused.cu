// The fused decode matvec (fused.cuh) as kernels of its own: fused_stage.cuh's blocks, launched
// with a grid shaped by the matrix.
#include <algorithm>
#include "context.cuh"
#include "fused_stage.cuh"
#include "ops.cuh"

namespace orcd {
namespace {

constexpr int kMaxWarps = 8;
constexpr int kMinBlocks = 2;
constexpr int kBlocksPerSm = 4;

// At least kMinBlocks blocks of kMaxWarps per SM (<= 128 registers): as in matvec.cu, the bound
// lets ptxas keep every load of a step in flight rather than sink each to its use.
template <bool Int>
__global__ void __launch_bounds__(kMaxWarps * 32, kMinBlocks)
fused_matvec_kernel(const FusedMatvec op) {
    extern __shared__ __align__(16) uint8_t smem[];
    fused_matvec_block<Int>(op, smem, blockIdx.x, gridDim.x);
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

// Warps per block: the most (x staged once for more pairs) that still gives every SM a block.
// Blocks: at most kBlocksPerSm per SM, whose warps then take further pairs, so that a large
// matrix (the output's vocabulary) does not stage x once per 8 pairs.
orcd_status launch_shape(int pairs, int *warps, unsigned *blocks) {
    int sms = 0;
    ORCD_TRY(multiprocessors(&sms));
    *warps = 2;
    for (int cand : {kMaxWarps, 4})
        if (*warps == 2 && (pairs + cand - 1) / cand >= sms) *warps = cand;
    *blocks = unsigned(std::min((pairs + *warps - 1) / *warps, kBlocksPerSm * sms));
    return ORCD_OK;
}

}  // namespace

orcd_status fused_matvec(const FusedMatvec &op_, cudaStream_t stream) {
    FusedMatvec op = op_;
    ORCD_TRY(fused_matvec_check(&op));
    int rows = 0, warps = 2;
    for (int i = 0; i < op.parts; ++i) rows += int(op.w[i].ne1);
    unsigned blocks = 0;
    ORCD_TRY(launch_shape((rows + 1) / 2, &warps, &blocks));
    size_t smem = fused_matvec_smem(op);
    if (op.integer) fused_matvec_kernel<true><<<blocks, warps * 32, smem, stream>>>(op);
    else fused_matvec_kernel<false><<<blocks, warps * 32, smem, stream>>>(op);
    return check(cudaGetLastError(), "fused matvec kernel launch");
}

}  // namespace orcd
