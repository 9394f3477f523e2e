// The llama family's decode step (one token) with each matvec fused to the steps around it,
// the same story as llama_forward in llama.cu in fewer launches: per layer
//   rmsnorm → q, k, v (+ bias) → rope → K, V into the cache     one kernel
//   attention over the cache                                    one kernel
//   x += attn_output · att                                      one kernel
//   rmsnorm → gate, up → swiglu (→ hidden as Q8_1)              one kernel
//   x += ffn_down · hidden                                      one kernel
// then rmsnorm → output → logits in one more. ORCD_FUSED=0 keeps llama.cu's step-by-step path.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include "fused.cuh"
#include "ops.cuh"

namespace orcd {
namespace {

FusedMatvec fused_op(Epilogue e, const float *x, int cols, const Tensor *norm, float eps,
                     float *out) {
    FusedMatvec op{};
    op.epilogue = e;
    op.x = x;
    op.cols = cols;
    op.norm = norm ? norm->f32() : nullptr;
    op.eps = eps;
    op.out = out;
    return op;
}

// hidden as Q8_1 too, 32 values at a time, for ffn_down's integer path: ffn_down then
// stages nothing.
XQ8_1 hidden_q(const Pass &s) {
    int f = s.m.cfg.feed_forward_length;
    if (f % 32) return {nullptr, nullptr};
    return {s.a.hidden_q, reinterpret_cast<block_q8_1_scale *>(s.a.hidden_q + f)};
}

orcd_status ffn_gate_up_swiglu(const Pass &s, const LayerWeights &l) {
    const orcd_model_config &c = s.m.cfg;
    FusedMatvec op = fused_op(Epilogue::swiglu, s.a.x, c.embedding_length, &l.ffn_norm,
                              c.rms_eps, s.a.hidden);
    op.out_q = hidden_q(s);
    op.groups_done = s.a.groups_done;
    if (l.ffn_gate.data) {
        op.w[0] = l.ffn_gate, op.w[1] = l.ffn_up;
        op.parts = 2;
    } else {
        op.w[0] = l.ffn_up;  // phi3: gate rows, then up rows
        op.parts = 1;
    }
    return fused_matvec(op, s.stream);
}

orcd_status layer(const Pass &s, int i) {
    const LayerWeights &l = s.m.w.layers[i];
    ORCD_TRY(fused_qkv_rope_store(s, i));
    ORCD_TRY(fused_attention(s, i));
    ORCD_TRY(fused_matvec_residual(s, l.attn_output, {}, s.a.att, {nullptr, nullptr}));
    ORCD_TRY(ffn_gate_up_swiglu(s, l));
    return fused_matvec_residual(s, l.ffn_down, {}, s.a.hidden, hidden_q(s));
}

}  // namespace

orcd_status fused_qkv_rope_store(const Pass &s, int layer) {
    const orcd_model_config &c = s.m.cfg;
    const LayerWeights &l = s.m.w.layers[layer];
    FusedMatvec op = fused_op(Epilogue::qkv, s.a.x, c.embedding_length, &l.attn_norm, c.rms_eps,
                              qkv_view(c, s.a).q);
    if (l.attn_qkv.data) {
        op.w[0] = l.attn_qkv;
        op.parts = 1;
    } else {
        op.w[0] = l.attn_q, op.w[1] = l.attn_k, op.w[2] = l.attn_v;
        op.parts = 3;
    }
    size_t at = layer * s.m.kv.layer_elems;
    op.kv = {s.m.kv.k + at, s.m.kv.v + at, attention_shape(c), s.m.rope,
             {l.attn_q_bias.f32(), l.attn_k_bias.f32(), l.attn_v_bias.f32()}, s.pos0};
    return fused_matvec(op, s.stream);
}

orcd_status fused_attention(const Pass &s, int layer) {
    size_t at = layer * s.m.kv.layer_elems;
    return attention_decode_one_launch(qkv_view(s.m.cfg, s.a).q, s.m.kv.k + at, s.m.kv.v + at,
                                       s.a.att, s.a.partial, s.a.splits_done,
                                       layer_attention_shape(s.m.cfg, layer), s.pos0, s.stream,
                                       s.m.w.layers[layer].attn_sinks.f32());
}

orcd_status fused_matvec_residual(const Pass &s, const Tensor &w, const Tensor &bias,
                                  const float *in, XQ8_1 in_q) {
    FusedMatvec op = fused_op(Epilogue::residual, in, int(w.ne0), nullptr, 0.0f, s.a.x);
    op.xq = in_q;
    op.bias = bias.f32();
    op.w[0] = w;
    op.parts = 1;
    return fused_matvec(op, s.stream);
}

orcd_status fused_logits(const Pass &s) {
    const orcd_model_config &c = s.m.cfg;
    FusedMatvec op = fused_op(Epilogue::store, s.a.x, c.embedding_length, &s.m.w.output_norm,
                              c.rms_eps, s.a.logits);
    op.w[0] = s.m.w.output;
    op.parts = 1;
    return fused_matvec(op, s.stream);
}

bool fused_decode_enabled() {
    const char *v = std::getenv("ORCD_FUSED");
    return !(v && !std::strcmp(v, "0"));
}

bool fused_decode_fits(const orcd_model_config &c, const Weights &w) {
    int widest = std::max({c.embedding_length, c.head_count * c.head_dim, c.feed_forward_length});
    for (const LayerWeights &l : w.layers)
        if (l.ffn_gate.data && l.ffn_gate.type != l.ffn_up.type) return false;
    return widest <= kFusedMaxCols;
}

orcd_status llama_decode_fused(const Model &m, const Activations &a, const int32_t *id,
                               const int *pos, cudaStream_t stream) {
    Pass s{m, a, 1, pos, stream};
    const Tensor &e = m.w.token_embd;
    ORCD_TRY(embed_rows(e.type, e.data, id, a.x, m.cfg.embedding_length, 1, stream));
    for (int i = 0; i < m.cfg.block_count; ++i) ORCD_TRY(layer(s, i));
    return fused_logits(s);
}

}  // namespace orcd
