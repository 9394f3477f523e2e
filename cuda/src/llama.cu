// The forward pass of the llama family (llama, qwen2, phi3), step by step as in
// orcd/reference/llama.py (its steps in steps.py): embeddings → per layer [rmsnorm → q, k, v
// (+ bias) → rope → attention over the KV cache → attn_output → residual → rmsnorm → gate, up →
// swiglu → ffn_down → residual] → rmsnorm → output → logits. The biases and residuals of
// several rows are matmul's epilogue (pass.cuh).
// One token (decode) multiplies by matvec, several (prefill) by matmul; one token goes
// through the persistent kernel of decode_persistent.cu or the fused kernels of
// decode_fused.cu instead, as m.decode says (options.cuh's ORCD_FUSED).
#include "activation.cuh"
#include "pass.cuh"

namespace orcd {
namespace {

orcd_status ffn(const Pass &p, const LayerWeights &l) {
    FfnView f = ffn_view(p.m, p.a);
    if (l.ffn_gate.data) {
        ORCD_TRY(project(p, l.ffn_gate, p.a.xn, f.gate, p.n));
        ORCD_TRY(project(p, l.ffn_up, p.a.xn, f.up, p.n));
    } else {
        ORCD_TRY(project(p, l.ffn_up, p.a.xn, f.gate, p.n));
    }
    int ff = p.m.cfg.feed_forward_length;
    ORCD_TRY(swiglu(f.gate, f.up, f.stride, p.a.hidden, p.n, ff, p.stream, overlaps(p)));
    return project_residual(p, l.ffn_down, p.a.hidden);
}

orcd_status layer(const Pass &p, int i) {
    const LayerWeights &l = p.m.w.layers[i];
    QkvView v = qkv_view(p.m, p.a);
    ORCD_TRY(rmsnorm(p, p.a.x, l.attn_norm, p.a.xn, p.n));
    ORCD_TRY(qkv(p, l, v));
    ORCD_TRY(rope_store(p, i, v));
    ORCD_TRY(attention(p, i, v));
    ORCD_TRY(project_residual(p, l.attn_output, p.a.att));
    ORCD_TRY(rmsnorm(p, p.a.x, l.ffn_norm, p.a.xn, p.n));
    return ffn(p, l);
}

}  // namespace

orcd_status llama_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                         const int *pos0, cudaStream_t stream) {
    Pass p{m, a, n, pos0, stream};
    ORCD_TRY(embed(p, ids));
    for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(layer(p, i));
    return ORCD_OK;
}

orcd_status llama_forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                          const int *pos0, bool all_logits, cudaStream_t stream) {
    if (n == 1 && m.decode == DecodePath::persistent)
        return llama_decode_persistent(m, a, ids, pos0, stream);
    if (n == 1 && m.decode == DecodePath::fused) return llama_decode_fused(m, a, ids, pos0, stream);
    ORCD_TRY(llama_layers(m, a, ids, n, pos0, stream));
    return logits(Pass{m, a, n, pos0, stream}, all_logits);
}

}  // namespace orcd
