// The shared steps of a forward pass (pass.cuh).
#include "activation.cuh"
#include "norm.cuh"
#include "ops.cuh"
#include "pass.cuh"

namespace orcd {

bool overlaps(const Pass &p) { return p.a.matmul.overlap; }

// Several rows take the bias (and the residual) in matmul's epilogue; one row, kernels of
// their own after the matvec.
orcd_status project(const Pass &p, const Tensor &w, const float *x, float *y, int n,
                    const Tensor *bias, int ld) {
    int rows = int(w.ne1), cols = int(w.ne0);
    const float *b = bias ? bias->f32() : nullptr;
    if (n > 1)
        return matmul(w.type, w.data, x, y, rows, cols, n, p.a.matmul, p.stream, {b, false, ld});
    ORCD_TRY(matvec(p.m.matvec, w.type, w.data, x, y, rows, cols, p.stream));
    return b ? add_bias(y, rows, b, 1, rows, p.stream) : ORCD_OK;
}

orcd_status project_residual(const Pass &p, const Tensor &w, const float *x, const Tensor *bias) {
    int rows = int(w.ne1), cols = int(w.ne0);
    if (p.n > 1)
        return matmul(w.type, w.data, x, p.a.x, rows, cols, p.n, p.a.matmul, p.stream,
                      {bias ? bias->f32() : nullptr, true});
    ORCD_TRY(project(p, w, x, p.a.proj, 1, bias));
    return residual(p.a.x, p.a.proj, rows, p.stream);
}

orcd_status rmsnorm(const Pass &p, const float *x, const Tensor &w, float *out, int n) {
    return rmsnorm(x, w.f32(), out, n, p.m.cfg.embedding_length, p.m.cfg.rms_eps, p.stream,
                   overlaps(p));
}

// One matmul of the rows attn_qkv holds (Q, K and maybe V: its bias, the three side by side,
// covers them), then one of each tensor left, each row into the view's layout.
orcd_status qkv(const Pass &p, const LayerWeights &l, const QkvView &v) {
    bool biased = l.attn_q_bias.data;  // qwen2, gpt-oss: all three or none
    if (l.attn_qkv.data)
        ORCD_TRY(project(p, l.attn_qkv, p.a.xn, v.q, p.n,
                         l.attn_qkv_bias.data ? &l.attn_qkv_bias : nullptr, v.q_stride));
    if (l.attn_q.data)
        ORCD_TRY(project(p, l.attn_q, p.a.xn, v.q, p.n, biased ? &l.attn_q_bias : nullptr,
                         v.q_stride));
    if (l.attn_k.data)
        ORCD_TRY(project(p, l.attn_k, p.a.xn, v.k, p.n, biased ? &l.attn_k_bias : nullptr,
                         v.kv_stride));
    if (!l.attn_v.data) return ORCD_OK;
    return project(p, l.attn_v, p.a.xn, v.v, p.n, biased ? &l.attn_v_bias : nullptr, v.kv_stride);
}

orcd_status rope_store(const Pass &p, int layer, const QkvView &v) {
    AttentionShape s = layer_attention_shape(p.m.cfg, layer);
    half *k = p.m.kv.k + layer * p.m.kv.layer_elems, *vc = p.m.kv.v + layer * p.m.kv.layer_elems;
    return rope_store(v.q, v.k, v.v, v.q_stride, v.kv_stride, p.n, p.m.cfg.head_count, p.m.rope,
                      k, vc, s, p.pos0, p.stream, overlaps(p));
}

orcd_status attention(const Pass &p, int layer, const QkvView &v) {
    AttentionShape s = layer_attention_shape(p.m.cfg, layer);
    const float *sinks = p.m.w.layers[layer].attn_sinks.f32();
    half *k = p.m.kv.k + layer * p.m.kv.layer_elems, *vc = p.m.kv.v + layer * p.m.kv.layer_elems;
    if (p.n == 1)
        return attention_decode(v.q, k, vc, p.a.att, p.a.partial, s, p.pos0, p.stream, sinks);
    return attention_prefill(v.q, v.q_stride, k, vc, p.a.att, p.n, s, p.pos0, p.stream, sinks,
                             p.a.prefill_partial, p.a.prefill_partial_floats, overlaps(p));
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
