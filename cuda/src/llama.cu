// The forward pass of the llama family (llama, qwen2, phi3), step by step as in
// orcd/reference/{llama,qwen2,phi3}.py: embeddings → per layer [rmsnorm → q, k, v (+ bias)
// → rope → attention over the KV cache → attn_output → residual → rmsnorm → gate, up →
// swiglu → ffn_down → residual] → rmsnorm → output → logits.
// One token (decode) multiplies by matvec, several (prefill) by matmul; one token goes
// through the fused kernels of llama_fused.cu instead unless ORCD_FUSED=0.
#include "activation.cuh"
#include "common.cuh"
#include "model.cuh"
#include "norm.cuh"
#include "ops.cuh"

namespace orcd {
namespace {

struct Pass {
    const Model &m;
    const Activations &a;
    int n;
    const int *pos0;
    cudaStream_t stream;
};

// y[n, rows] = x[n, cols] Wᵀ
orcd_status matmul(const Pass &p, const Tensor &w, const float *x, float *y, int n) {
    if (n == 1) return matvec(w.type, w.data, x, y, int(w.ne1), int(w.ne0), p.a.scratch, p.stream);
    return orcd::matmul(w.type, w.data, x, y, int(w.ne1), int(w.ne0), n, p.a.scratch, p.stream);
}

orcd_status rmsnorm(const Pass &p, const float *x, const Tensor &w, float *out, int n) {
    return orcd::rmsnorm(x, w.f32(), out, n, p.m.cfg.embedding_length, p.m.cfg.rms_eps, p.stream);
}

orcd_status qkv(const Pass &p, const LayerWeights &l, const QkvView &v) {
    if (l.attn_qkv.data) return matmul(p, l.attn_qkv, p.a.xn, v.q, p.n);
    ORCD_TRY(matmul(p, l.attn_q, p.a.xn, v.q, p.n));
    ORCD_TRY(matmul(p, l.attn_k, p.a.xn, v.k, p.n));
    ORCD_TRY(matmul(p, l.attn_v, p.a.xn, v.v, p.n));
    if (!l.attn_q_bias.data) return ORCD_OK;
    ORCD_TRY(add_bias(v.q, v.q_stride, l.attn_q_bias.f32(), p.n, int(l.attn_q_bias.ne0), p.stream));
    ORCD_TRY(add_bias(v.k, v.kv_stride, l.attn_k_bias.f32(), p.n, int(l.attn_k_bias.ne0), p.stream));
    return add_bias(v.v, v.kv_stride, l.attn_v_bias.f32(), p.n, int(l.attn_v_bias.ne0), p.stream);
}

orcd_status rope(const Pass &p, const QkvView &v) {
    const orcd_model_config &c = p.m.cfg;
    ORCD_TRY(orcd::rope(v.q, p.n, v.q_stride, c.head_count, c.head_dim, p.m.rope, p.pos0, p.stream));
    return orcd::rope(v.k, p.n, v.kv_stride, c.head_count_kv, c.head_dim, p.m.rope, p.pos0, p.stream);
}

orcd_status attention(const Pass &p, int layer, const QkvView &v) {
    AttentionShape s = attention_shape(p.m.cfg);
    half *k = p.m.kv.k + layer * p.m.kv.layer_elems, *vc = p.m.kv.v + layer * p.m.kv.layer_elems;
    ORCD_TRY(kv_store(v.k, v.v, v.kv_stride, p.n, k, vc, s, p.pos0, p.stream));
    if (p.n == 1) return attention_decode(v.q, k, vc, p.a.att, p.a.partial, s, p.pos0, p.stream);
    return attention_prefill(v.q, v.q_stride, k, vc, p.a.att, p.n, s, p.pos0, p.stream);
}

orcd_status ffn(const Pass &p, const LayerWeights &l) {
    FfnView f = ffn_view(p.m.cfg, p.a);
    if (l.ffn_gate.data) {
        ORCD_TRY(matmul(p, l.ffn_gate, p.a.xn, f.gate, p.n));
        ORCD_TRY(matmul(p, l.ffn_up, p.a.xn, f.up, p.n));
    } else {
        ORCD_TRY(matmul(p, l.ffn_up, p.a.xn, f.gate, p.n));
    }
    int ff = p.m.cfg.feed_forward_length;
    ORCD_TRY(swiglu(f.gate, f.up, f.stride, p.a.hidden, p.n, ff, p.stream));
    return matmul(p, l.ffn_down, p.a.hidden, p.a.proj, p.n);
}

orcd_status layer(const Pass &p, int i) {
    const LayerWeights &l = p.m.w.layers[i];
    int residual_count = p.n * p.m.cfg.embedding_length;
    QkvView v = qkv_view(p.m.cfg, p.a);
    ORCD_TRY(rmsnorm(p, p.a.x, l.attn_norm, p.a.xn, p.n));
    ORCD_TRY(qkv(p, l, v));
    ORCD_TRY(rope(p, v));
    ORCD_TRY(attention(p, i, v));
    ORCD_TRY(matmul(p, l.attn_output, p.a.att, p.a.proj, p.n));
    ORCD_TRY(residual(p.a.x, p.a.proj, residual_count, p.stream));
    ORCD_TRY(rmsnorm(p, p.a.x, l.ffn_norm, p.a.xn, p.n));
    ORCD_TRY(ffn(p, l));
    return residual(p.a.x, p.a.proj, residual_count, p.stream);
}

}  // namespace

orcd_status llama_forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                          const int *pos0, bool all_logits, cudaStream_t stream) {
    if (n < 1 || n > a.rows || (all_logits && n > a.logits_rows))
        return fail(ORCD_ERR_INVALID, "forward of %d tokens on buffers for %d", n, a.rows);
    if (n == 1 && m.fused) return llama_decode_fused(m, a, ids, pos0, stream);
    Pass p{m, a, n, pos0, stream};
    const Weights &w = m.w;
    int d = m.cfg.embedding_length;
    ORCD_TRY(embed_rows(w.token_embd.type, w.token_embd.data, ids, a.x, d, n, stream));
    for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(layer(p, i));
    int first = all_logits ? 0 : n - 1, rows = n - first;
    ORCD_TRY(rmsnorm(p, a.x + size_t(first) * d, w.output_norm, a.xn, rows));
    return matmul(p, w.output, a.xn, a.logits, rows);
}

}  // namespace orcd
