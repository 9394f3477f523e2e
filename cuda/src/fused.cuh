// Decode (one token) matvecs fused with their neighbours, for the fused decode step
// (decode_fused.cu, ORCD_FUSED=1): each block stages x in shared memory (RMSNorm'd first when a
// norm is given; quantized to Q8_1 on the integer path, as matvec.cu quantizes it), each group
// of warps computes a pair of rows, and an epilogue consumes the pair where it was computed.
#pragma once
#include <cuda_fp16.h>
#include "matvec.cuh"
#include "pass.cuh"

namespace orcd {

enum class Epilogue {
    qkv,       // rows Q | K | V (+ bias), rope on Q and K, K and V into the FP16 cache
    swiglu,    // rows gate | up: out[i] = silu(gate_i) * up_i
    residual,  // out[i] += y_i (+ bias[i])
    store,     // out[i] = y_i (+ bias[i])
};

// Where the qkv epilogue puts K and V: one layer's cache at position *pos.
struct KvTarget {
    half *k, *v;
    AttentionShape shape;
    RopeTable rope;
    const float *bias[3];  // qwen2's Q, K, V biases; null without
    const int *pos;        // device
};

// y = W · x̂ with x̂ = rmsnorm(x) · norm (or x when norm is null), W the rows of w[0], then
// w[1], then w[2] (`parts` of them, each `cols` wide); then the epilogue into out.
struct FusedMatvec {
    Epilogue epilogue;
    const float *x;
    int cols;
    const float *norm;
    float eps;
    Tensor w[3];
    int parts;
    float *out;
    const float *bias;  // residual and store: null, or one per row (gpt-oss's attn_output)
    KvTarget kv;
    XQ8_1 xq;          // x already as Q8_1 (from a swiglu's out_q), for the integer path
    XQ8_1 out_q;       // swiglu: out also as Q8_1, 32 values at a time (out's count % 32 == 0)
    int *groups_done;  // swiglu with out_q: per 32 outputs, a zeroed counter
    MatvecPath path;   // the integer path for quantized weights, or the plain one for all
    bool integer;      // set by fused_matvec_check: every part takes the integer path
    int split;         // warps that share a pair (split-K; set by fused_matvec, else 1):
                       // divides the block's warps
    bool streamed;     // where the op allows it, rows loaded ahead (fused_stage.cuh's
                       // streamed_pairs); else pair by pair after x is staged
    bool format_kernels;  // the kernel of the parts' one format, where they share one (fused.cu)
    int block_warps;   // warps per block (fused_matvec's launch): 0, the most that still give
                       // every SM a block; else this many, at least `split`
    bool overlap;      // launched to overlap the kernel before it (overlap.cuh), prefetching
                       // the first kFusedPrefetchBytes of its weights meanwhile
    size_t prefetch[3];  // set by fused_matvec when overlap: bytes of each part asked of L2
};

// Weight bytes an overlapping fused matvec asks of L2 before its predecessor ends, shared out
// over its parts: the rows it reads first (every block takes its rows from the first on), and
// few enough that they stay in L2 until read.
constexpr size_t kFusedPrefetchBytes = size_t(8) << 20;

// The widest x a block stages: its floats and the reductions' 128 bytes fit the 48 KiB of
// shared memory a kernel gets without opting in.
constexpr int kFusedMaxCols = 12032;

orcd_status fused_matvec(const FusedMatvec &op, cudaStream_t stream);

// Checks the op's shapes and formats (every part `cols` wide, whole blocks; gate and up of one
// format) and sets op->integer.
orcd_status fused_matvec_check(FusedMatvec *op);
// Shared memory a block of the op stages x in.
size_t fused_matvec_smem(const FusedMatvec &op);

// Whether a model fits the fused kernels: widths up to kFusedMaxCols, gate and up of one format.
bool fused_decode_fits(const orcd_model_config &c, const Weights &w);

// The ops of a decode step of one token (p.n == 1) at *p.pos0 (decode_fused.cu), run as fused
// launches there and in gpt_oss.cu, or as the persistent kernel's stages
// (decode_persistent.cu).
// rmsnorm(x) → q, k, v (+ biases) → rope → K, V into the layer's cache; Q into a.qkv
FusedMatvec qkv_op(const Pass &p, int layer);
// attention over the layer's cache (its window and sinks), into a.att
DecodeAttention attention_op(const Pass &p, int layer);
// x += attn_output · att (+ bias)
FusedMatvec attn_output_op(const Pass &p, int layer);
// rmsnorm(x) → gate, up → swiglu into a.hidden, and a.hidden as Q8_1 (hidden_q)
FusedMatvec gate_up_op(const Pass &p, int layer);
// x += ffn_down · hidden, read as Q8_1 on the integer path
FusedMatvec down_op(const Pass &p, int layer);
// rmsnorm(x) → output → a.logits
FusedMatvec logits_op(const Pass &p);
// a.hidden as Q8_1, 32 values at a time ({nullptr, nullptr} when the width is no multiple of 32,
// or with ORCD_HIDDEN_Q8=0: ffn_down's blocks then round it as they stage it)
XQ8_1 hidden_q(const Pass &p);

// qkv_op, attention_op and logits_op as launches of their own
orcd_status fused_qkv_rope_store(const Pass &p, int layer);
orcd_status fused_attention(const Pass &p, int layer);
orcd_status fused_logits(const Pass &p);

}  // namespace orcd
