// Decode (one token) matvecs fused with their neighbours, for the fused decode step
// (llama_fused.cu, ORCD_FUSED): each block stages x in shared memory (RMSNorm'd first when a
// norm is given; quantized to Q8_1 on the integer path, as matvec.cu quantizes it), each warp
// computes a pair of rows, and an epilogue consumes the pair where it was computed.
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
};

// The widest x a block stages: its floats and the reductions' 128 bytes fit the 48 KiB of
// shared memory a kernel gets without opting in.
constexpr int kFusedMaxCols = 12032;

orcd_status fused_matvec(const FusedMatvec &op, cudaStream_t stream);

// Steps of a fused decode step (llama_fused.cu) that gpt_oss.cu shares: a pass of one token
// (p.n == 1) at *p.pos0.
// rmsnorm(x) → q, k, v (+ biases) → rope → K, V into layer i's cache; Q into a.qkv
orcd_status fused_qkv_rope_store(const Pass &s, int layer);
// attention over layer i's cache (its window and sinks) in one launch, into a.att
orcd_status fused_attention(const Pass &s, int layer);
// x += W · in (+ bias); in_q: in as Q8_1, or {nullptr, nullptr}
orcd_status fused_matvec_residual(const Pass &s, const Tensor &w, const Tensor &bias,
                                  const float *in, XQ8_1 in_q);
// rmsnorm(x) → output → a.logits
orcd_status fused_logits(const Pass &s);

}  // namespace orcd
