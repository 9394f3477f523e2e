// The shared steps of a forward pass (pass.cuh).
#include "activation.cuh"
#include "norm.cuh"
#include "ops.cuh"
#include "pass.cuh"

namespace orcd {

orcd_status project(const Pass &p, const Tensor &w, const float *x, float *y, int n) {
    if (n == 1) return matvec(p.m.matvec, w.type, w.data, x, y, int(w.ne1), int(w.ne0), p.stream);
    return matmul(w.type, w.data, x, y, int(w.ne1), int(w.ne0), n, p.stream);
}

orcd_status rmsnorm(const Pass &p, const float *x, const Tensor &w, float *out, int n) {
    return rmsnorm(x, w.f32(), out, n, p.m.cfg.embedding_length, p.m.cfg.rms_eps, p.stream);
}

orcd_status qkv(const Pass &p, const LayerWeights &l, const QkvView &v) {
    if (l.attn_qkv.data) return project(p, l.attn_qkv, p.a.xn, v.q, p.n);
    ORCD_TRY(project(p, l.attn_q, p.a.xn, v.q, p.n));
    ORCD_TRY(project(p, l.attn_k, p.a.xn, v.k, p.n));
    ORCD_TRY(project(p, l.attn_v, p.a.xn, v.v, p.n));
    if (!l.attn_q_bias.data) return ORCD_OK;
    ORCD_TRY(add_bias(v.q, v.q_stride, l.attn_q_bias.f32(), p.n, int(l.attn_q_bias.ne0), p.stream));
    ORCD_TRY(add_bias(v.k, v.kv_stride, l.attn_k_bias.f32(), p.n, int(l.attn_k_bias.ne0), p.stream));
    return add_bias(v.v, v.kv_stride, l.attn_v_bias.f32(), p.n, int(l.attn_v_bias.ne0), p.stream);
}

orcd_status rope(const Pass &p, const QkvView &v) {
    const orcd_model_config &c = p.m.cfg;
    ORCD_TRY(rope(v.q, p.n, v.q_stride, c.head_count, c.head_dim, p.m.rope, p.pos0, p.stream));
    return rope(v.k, p.n, v.kv_stride, c.head_count_kv, c.head_dim, p.m.rope, p.pos0, p.stream);
}

orcd_status attention(const Pass &p, int layer, const QkvView &v) {
    AttentionShape s = layer_attention_shape(p.m.cfg, layer);
    const float *sinks = p.m.w.layers[layer].attn_sinks.f32();
    half *k = p.m.kv.k + layer * p.m.kv.layer_elems, *vc = p.m.kv.v + layer * p.m.kv.layer_elems;
    ORCD_TRY(kv_store(v.k, v.v, v.kv_stride, p.n, k, vc, s, p.pos0, p.stream));
    if (p.n == 1)
        return attention_decode(v.q, k, vc, p.a.att, p.a.partial, s, p.pos0, p.stream, sinks);
    return attention_prefill(v.q, v.q_stride, k, vc, p.a.att, p.n, s, p.pos0, p.stream, sinks,
                             p.a.prefill_partial,
                             attention_prefill_partial_floats(attention_shape(p.m.cfg)));
}

orcd_status embed(const Pass &p, const int32_t *ids) {
    const Tensor &e = p.m.w.token_embd;
    return embed_rows(e.type, e.data, ids, p.a.x, p.m.cfg.embedding_length, p.n, p.stream);
}

orcd_status logits(const Pass &p, bool all_logits) {
    int d = p.m.cfg.embedding_length, first = all_logits ? 0 : p.n - 1, rows = p.n - first;
    ORCD_TRY(rmsnorm(p, p.a.x + size_t(first) * d, p.m.w.output_norm, p.a.xn, rows));
    return project(p, p.m.w.output, p.a.xn, p.a.logits, rows);
}

}  // namespace orcd
