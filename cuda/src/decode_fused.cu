// The llama family's decode step (one token) with each matvec fused to the steps around it,
// the same story as llama_forward in llama.cu in fewer launches: per layer
//   rmsnorm → q, k, v (+ bias) → rope → K, V into the cache     one kernel
//   attention over the cache                                    one kernel
//   x += attn_output · att                                      one kernel
//   rmsnorm → gate, up → swiglu (→ hidden as Q8_1)              one kernel
//   x += ffn_down · hidden                                      one kernel
// then rmsnorm → output → logits in one more. The ops are built here once for both of their
// runners: these launches, and the persistent kernel's stages (decode_persistent.cu).
// gpt_oss.cu takes the attention half of these steps. ORCD_FUSED=0 keeps llama.cu's
// step-by-step path (options.cuh).
#include <algorithm>
#include "fused.cuh"
#include "ops.cuh"

namespace orcd {
namespace {

FusedMatvec fused_op(const Pass &p, Epilogue e, const float *x, int cols, const Tensor *norm,
                     float eps, float *out) {
    FusedMatvec op{};
    op.path = p.m.matvec;
    op.overlap = p.m.overlap;
    op.block_warps = p.m.fused.warps;
    op.streamed = p.m.fused.stream;
    op.format_kernels = p.m.fused.format_kernels;
    op.epilogue = e;
    op.x = x;
    op.cols = cols;
    op.norm = norm ? norm->f32() : nullptr;
    op.eps = eps;
    op.out = out;
    return op;
}

orcd_status layer(const Pass &p, int i) {
    const LayerWeights &l = p.m.w.layers[i];
    ORCD_TRY(fused_qkv_rope_store(p, i));
    ORCD_TRY(fused_attention(p, i));
    ORCD_TRY(fused_matvec(attn_output_op(p, i), p.stream));
    ORCD_TRY(fused_matvec(gate_up_op(p, i), p.stream));
    return fused_matvec(down_op(p, i), p.stream);
}

}  // namespace

XQ8_1 hidden_q(const Pass &p) {
    int f = p.m.cfg.feed_forward_length;
    if (f % 32 || !p.m.fused.hidden_q8) return {nullptr, nullptr};
    return {p.a.hidden_q, reinterpret_cast<block_q8_1_scale *>(p.a.hidden_q + f)};
}

FusedMatvec qkv_op(const Pass &p, int layer) {
    const orcd_model_config &c = p.m.cfg;
    const LayerWeights &l = p.m.w.layers[layer];
    FusedMatvec op = fused_op(p, Epilogue::qkv, p.a.x, c.embedding_length, &l.attn_norm, c.rms_eps,
                              qkv_view(p.m, p.a).q);
    for (const Tensor *t : {&l.attn_qkv, &l.attn_q, &l.attn_k, &l.attn_v})  // rows Q, K, V
        if (t->data) op.w[op.parts++] = *t;
    size_t at = layer * p.m.kv.layer_elems;
    op.kv = {p.m.kv.k + at, p.m.kv.v + at, attention_shape(c), p.m.rope,
             {l.attn_q_bias.f32(), l.attn_k_bias.f32(), l.attn_v_bias.f32()}, p.pos0};
    return op;
}

DecodeAttention attention_op(const Pass &p, int layer) {
    size_t at = layer * p.m.kv.layer_elems;
    AttentionShape s = layer_attention_shape(p.m.cfg, layer);
    return {qkv_view(p.m, p.a).q, p.m.kv.k + at, p.m.kv.v + at, p.a.partial, p.a.att,
            p.a.splits_done, s, attention_decode_splits(s), p.pos0,
            p.m.w.layers[layer].attn_sinks.f32()};
}

FusedMatvec residual_op(const Pass &p, const Tensor &w, const Tensor &bias, const float *in,
                        XQ8_1 in_q) {
    FusedMatvec op = fused_op(p, Epilogue::residual, in, int(w.ne0), nullptr, 0.0f, p.a.x);
    op.xq = in_q;
    op.bias = bias.f32();
    op.w[0] = w;
    op.parts = 1;
    return op;
}

FusedMatvec attn_output_op(const Pass &p, int layer) {
    const LayerWeights &l = p.m.w.layers[layer];
    return residual_op(p, l.attn_output, l.attn_output_bias, p.a.att, {nullptr, nullptr});
}

FusedMatvec gate_up_op(const Pass &p, int layer) {
    const orcd_model_config &c = p.m.cfg;
    const LayerWeights &l = p.m.w.layers[layer];
    FusedMatvec op = fused_op(p, Epilogue::swiglu, p.a.x, c.embedding_length, &l.ffn_norm,
                              c.rms_eps, p.a.hidden);
    op.out_q = hidden_q(p);
    op.groups_done = p.a.groups_done;
    if (l.ffn_gate.data) {
        op.w[0] = l.ffn_gate, op.w[1] = l.ffn_up;
        op.parts = 2;
    } else {
        op.w[0] = l.ffn_up;  // phi3: gate rows, then up rows
        op.parts = 1;
    }
    return op;
}

FusedMatvec down_op(const Pass &p, int layer) {
    return residual_op(p, p.m.w.layers[layer].ffn_down, {}, p.a.hidden, hidden_q(p));
}

FusedMatvec logits_op(const Pass &p) {
    const orcd_model_config &c = p.m.cfg;
    FusedMatvec op = fused_op(p, Epilogue::store, p.a.x, c.embedding_length, &p.m.w.output_norm,
                              c.rms_eps, p.a.logits);
    op.w[0] = p.m.w.output;
    op.parts = 1;
    return op;
}

orcd_status fused_qkv_rope_store(const Pass &p, int layer) {
    return fused_matvec(qkv_op(p, layer), p.stream);
}

orcd_status fused_attention(const Pass &p, int layer) {
    DecodeAttention d = attention_op(p, layer);
    return attention_decode_one_launch(d.q, d.kc, d.vc, d.out, d.partial, d.done, d.s, d.pos0,
                                       p.stream, d.sinks, p.m.overlap);
}

orcd_status fused_logits(const Pass &p) { return fused_matvec(logits_op(p), p.stream); }

bool fused_decode_fits(const orcd_model_config &c, const Weights &w) {
    int widest = std::max({c.embedding_length, c.head_count * c.head_dim, c.feed_forward_length});
    for (const LayerWeights &l : w.layers)
        if (l.ffn_gate.data && l.ffn_gate.type != l.ffn_up.type) return false;
    return widest <= kFusedMaxCols;
}

orcd_status llama_decode_fused(const Model &m, const Activations &a, const int32_t *id,
                               const int *pos, cudaStream_t stream) {
    Pass p{m, a, 1, pos, stream};
    const Tensor &e = m.w.token_embd;
    ORCD_TRY(embed_rows(e.type, e.data, id, a.x, m.cfg.embedding_length, 1, stream));
    for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(layer(p, i));
    return fused_logits(p);
}

}  // namespace orcd
