// The gpt-oss forward pass (GPT-OSS-20B), as orcd/reference/gpt_oss.py: embeddings → per layer
// [rmsnorm → q, k, v + biases → YaRN rope → attention over the KV cache, with the layer's sink
// logits and, on even layers, a sliding window → attn_output + bias → residual → rmsnorm
// (post_attention_norm) → mixture of experts (router, top-k, clamped-SwiGLU experts) →
// residual] → rmsnorm → output → logits.
// YaRN is the rope table's per-pair divisors and cos/sin scale (orcd.models.rope), so the rope
// steps are the llama family's. One token goes through the fused matvecs unless m.decode is
// DecodePath::steps (ORCD_FUSED=0);
// the experts are moe.cu's on every path.
#include "activation.cuh"
#include "fused.cuh"
#include "pass.cuh"

namespace orcd {
namespace {

// x += moe(rmsnorm(x) · post_attention_norm)
orcd_status mixture_of_experts(const Pass &p, const LayerWeights &l) {
    ORCD_TRY(rmsnorm(p, p.a.x, l.ffn_norm, p.a.xn, p.n));
    MoeWeights w = moe_weights(p.m.cfg, &l);
    w.wgmma = p.a.matmul.wgmma;  // as the prefill's dense products (ORCD_WGMMA)
    return moe(w, p.a.xn, p.a.x, p.n, p.a.moe_scratch, p.stream);
}

orcd_status layer(const Pass &p, int i) {
    const LayerWeights &l = p.m.w.layers[i];
    QkvView v = qkv_view(p.m, p.a);
    ORCD_TRY(rmsnorm(p, p.a.x, l.attn_norm, p.a.xn, p.n));
    ORCD_TRY(qkv(p, l, v));
    ORCD_TRY(rope_store(p, i, v));
    ORCD_TRY(attention(p, i, v));
    ORCD_TRY(project_residual(p, l.attn_output, p.a.att, &l.attn_output_bias));
    return mixture_of_experts(p, l);
}

// The same layer for one token: three fused launches (q, k, v with rope and the cache write;
// attention; attn_output with its bias and the residual), then the plain rmsnorm and moe's.
orcd_status fused_layer(const Pass &p, int i) {
    const LayerWeights &l = p.m.w.layers[i];
    ORCD_TRY(fused_qkv_rope_store(p, i));
    ORCD_TRY(fused_attention(p, i));
    ORCD_TRY(fused_matvec(attn_output_op(p, i), p.stream));
    return mixture_of_experts(p, l);
}

}  // namespace

orcd_status gpt_oss_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                           const int *pos0, cudaStream_t stream) {
    Pass p{m, a, n, pos0, stream};
    ORCD_TRY(embed(p, ids));
    for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(layer(p, i));
    return ORCD_OK;
}

orcd_status gpt_oss_forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                            const int *pos0, bool all_logits, cudaStream_t stream) {
    Pass p{m, a, n, pos0, stream};
    if (n == 1 && m.decode != DecodePath::steps) {
        ORCD_TRY(embed(p, ids));
        for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(fused_layer(p, i));
        return fused_logits(p);
    }
    ORCD_TRY(gpt_oss_layers(m, a, ids, n, pos0, stream));
    return logits(p, all_logits);
}

}  // namespace orcd
