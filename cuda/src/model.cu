// Sizes and layouts of a model's device state; binding the GGUF tensors to the weight structs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>
#include "model.cuh"
#include "ops.cuh"
#include "pass.cuh"

namespace orcd {

// phi3 stores q, k, v in one tensor (attn_qkv) and gate, up in one (ffn_up).
static bool fused_tensors(const orcd_model_config &c) { return c.arch == ORCD_ARCH_PHI3; }
static int q_dim(const orcd_model_config &c) { return c.head_count * c.head_dim; }
static int kv_dim(const orcd_model_config &c) { return c.head_count_kv * c.head_dim; }

// Sub-buffers start on 256-byte boundaries, as the kernels' vector loads want.
static size_t aligned(size_t floats) { return (floats + 63) / 64 * 64; }

AttentionShape attention_shape(const orcd_model_config &c) {
    return {c.head_count, c.head_count_kv, c.head_dim, c.ctx};
}

// gpt-oss slides its window on the even layers (llama.cpp's swa pattern 2).
AttentionShape layer_attention_shape(const orcd_model_config &c, int layer) {
    AttentionShape s = attention_shape(c);
    if (layer % 2 == 0) s.window = c.sliding_window;
    return s;
}

MoeWeights moe_weights(const orcd_model_config &c, const LayerWeights *l) {
    MoeWeights w{};
    w.experts = c.expert_count;
    w.used = c.expert_used_count;
    w.d = c.embedding_length;
    w.ff = c.expert_feed_forward_length;
    if (!l) return w;
    w.router_w = l->ffn_gate_inp.f32();
    w.router_b = l->ffn_gate_inp_bias.f32();
    w.gate_up_type = l->ffn_gate_exps.type;
    w.down_type = l->ffn_down_exps.type;
    w.gate = l->ffn_gate_exps.data;
    w.up = l->ffn_up_exps.data;
    w.down = l->ffn_down_exps.data;
    w.gate_b = l->ffn_gate_exps_bias.f32();
    w.up_b = l->ffn_up_exps_bias.f32();
    w.down_b = l->ffn_down_exps_bias.f32();
    return w;
}

static size_t moe_bytes(const orcd_model_config &c, int rows) {
    return c.arch == ORCD_ARCH_GPT_OSS ? moe_scratch_bytes(moe_weights(c), rows) : 0;
}

QkvView qkv_view(const Model &m, const Activations &a) {
    int q = q_dim(m.cfg), kv = kv_dim(m.cfg);
    if (m.w.joint_qkv) return {a.qkv, a.qkv + q, a.qkv + q + kv, q + 2 * kv, q + 2 * kv};
    float *k = a.qkv + aligned(size_t(a.rows) * q);
    return {a.qkv, k, k + aligned(size_t(a.rows) * kv), q, kv};
}

FfnView ffn_view(const Model &m, const Activations &a) {
    int f = m.cfg.feed_forward_length;
    if (m.w.joint_gate_up) return {a.ffn, a.ffn + f, 2 * f};
    return {a.ffn, a.ffn + aligned(size_t(a.rows) * f), f};
}

static size_t qkv_floats(const orcd_model_config &c, int rows) {
    return aligned(size_t(rows) * q_dim(c)) + 2 * aligned(size_t(rows) * kv_dim(c));
}

static size_t ffn_floats(const orcd_model_config &c, int rows) {
    return 2 * aligned(size_t(rows) * c.feed_forward_length);
}

static int counters(const orcd_model_config &c) {
    return c.head_count + (c.feed_forward_length + 31) / 32;
}

// int8 per hidden value, then {float d; int sum} per 32.
static size_t hidden_q_bytes(const orcd_model_config &c) {
    return size_t(c.feed_forward_length + 31) / 32 * (32 + 8);
}

// The (rows, cols) of every projection a prefill multiplies by matmul (the output's only for
// scoring, a whole tile of rows already: never split).
static int projection_shapes(const orcd_model_config &c, int (*shapes)[2]) {
    int d = c.embedding_length, f = c.feed_forward_length, q = q_dim(c), kv = kv_dim(c);
    int n = 0;
    auto add = [&](int rows, int cols) { shapes[n][0] = rows, shapes[n][1] = cols, ++n; };
    add(q + 2 * kv, d), add(q, d), add(kv, d), add(d, q), add(2 * f, d), add(f, d), add(d, f);
    return n;
}

// The sizes of matmul's split-K scratch (ops.cuh) for a pass of `rows` tokens: the splits'
// sums of a short prompt (one tile of tokens), counters for every tile; none for one row,
// which takes the matvecs.
static MatmulScratch matmul_scratch_sizes(const orcd_model_config &c, int rows) {
    MatmulScratch m;
    if (rows < 2) return m;
    int shapes[8][2], n = projection_shapes(c, shapes);
    m.floats = matmul_scratch_floats(shapes, n, 1);
    m.counters = matmul_scratch_counters(shapes, n, rows);
    matmul_dense_halves(shapes, n, rows, &m.dense_w_halves, &m.dense_x_halves);
    return m;
}

static size_t matmul_scratch_bytes(const orcd_model_config &c, int rows) {
    MatmulScratch m = matmul_scratch_sizes(c, rows);
    return m.floats * sizeof(float) + size_t(m.counters) * sizeof(int) +
           (m.dense_w_halves + m.dense_x_halves) * sizeof(__half);
}

static orcd_status matmul_scratch_alloc(Allocator &alloc, const orcd_model_config &c, int rows,
                                        cudaStream_t stream, MatmulScratch *m) {
    *m = matmul_scratch_sizes(c, rows);
    if (m->floats == 0) return ORCD_OK;
    ORCD_TRY(alloc.alloc(&m->partial, m->floats, "matmul split sums"));
    ORCD_TRY(alloc.alloc(&m->done, m->counters, "matmul split counters"));
    if (m->dense_w_halves) {
        ORCD_TRY(alloc.alloc(&m->dense_w, m->dense_w_halves, "matmul weights in F16"));
        ORCD_TRY(alloc.alloc(&m->dense_x, m->dense_x_halves, "matmul tokens in F16"));
    }
    return check(cudaMemsetAsync(m->done, 0, m->counters * sizeof(int), stream),
                 "zero the matmul split counters");
}

size_t activation_bytes(const orcd_model_config &c, int rows, int logits_rows) {
    size_t d = c.embedding_length, floats = 3 * rows * d + qkv_floats(c, rows) +
        size_t(rows) * q_dim(c) + ffn_floats(c, rows) + size_t(rows) * c.feed_forward_length +
        size_t(logits_rows) * c.vocab_size + attention_decode_partial_floats(attention_shape(c)) +
        (rows > 1 ? attention_prefill_partial_floats(attention_shape(c)) : 0);
    return floats * sizeof(float) + (rows + 1 + counters(c)) * sizeof(int32_t) +
           hidden_q_bytes(c) + moe_bytes(c, rows) + matmul_scratch_bytes(c, rows);
}

orcd_status activations_alloc(Allocator &alloc, const orcd_model_config &c, int rows,
                              int logits_rows, cudaStream_t stream, Activations *a) {
    size_t d = c.embedding_length;
    a->rows = rows;
    a->logits_rows = logits_rows;
    ORCD_TRY(alloc.alloc(&a->x, rows * d, "residual stream"));
    ORCD_TRY(alloc.alloc(&a->xn, rows * d, "normed activations"));
    ORCD_TRY(alloc.alloc(&a->qkv, qkv_floats(c, rows), "q, k, v"));
    ORCD_TRY(alloc.alloc(&a->att, size_t(rows) * q_dim(c), "attention output"));
    ORCD_TRY(alloc.alloc(&a->ffn, ffn_floats(c, rows), "gate and up"));
    ORCD_TRY(alloc.alloc(&a->hidden, size_t(rows) * c.feed_forward_length, "ffn hidden state"));
    ORCD_TRY(alloc.alloc(&a->proj, rows * d, "projection output"));
    ORCD_TRY(alloc.alloc(&a->logits, size_t(logits_rows) * c.vocab_size, "logits"));
    ORCD_TRY(alloc.alloc(&a->partial, attention_decode_partial_floats(attention_shape(c)),
                         "attention partials"));
    if (rows > 1) {  // one row takes attention_decode
        a->prefill_partial_floats = attention_prefill_partial_floats(attention_shape(c));
        ORCD_TRY(alloc.alloc(&a->prefill_partial, a->prefill_partial_floats,
                             "prefill attention partials"));
    }
    ORCD_TRY(alloc.alloc(&a->ids, rows, "token ids"));
    ORCD_TRY(alloc.alloc(&a->pos0, 1, "position"));
    ORCD_TRY(alloc.alloc(&a->hidden_q, hidden_q_bytes(c), "ffn hidden state (Q8_1)"));
    ORCD_TRY(alloc.alloc(&a->splits_done, counters(c), "decode step counters"));
    if (size_t moe = moe_bytes(c, rows))
        ORCD_TRY(alloc.alloc(reinterpret_cast<uint8_t **>(&a->moe_scratch), moe, "expert scratch"));
    ORCD_TRY(matmul_scratch_alloc(alloc, c, rows, stream, &a->matmul));
    a->groups_done = a->splits_done + c.head_count;
    return check(cudaMemsetAsync(a->splits_done, 0, counters(c) * sizeof(int), stream),
                 "zero the decode step counters");
}

// Vectors, biases, sinks and the router are F32; matrices any format.
static orcd_status find(const TensorMap &t, const std::string &name, int64_t ne0, int64_t ne1,
                        Tensor *out, int64_t ne2 = 1, bool f32 = false) {
    auto it = t.find(name);
    if (it == t.end()) return fail(ORCD_ERR_INVALID, "tensor %s is missing", name.c_str());
    const Tensor &x = it->second;
    if (x.ne0 != ne0 || x.ne1 != ne1 || x.ne2 != ne2)
        return fail(ORCD_ERR_INVALID, "tensor %s has shape [%lld, %lld, %lld], expected "
                    "[%lld, %lld, %lld]", name.c_str(), (long long)x.ne0, (long long)x.ne1,
                    (long long)x.ne2, (long long)ne0, (long long)ne1, (long long)ne2);
    if ((ne1 == 1 || f32) && x.type != 0)
        return fail(ORCD_ERR_INVALID, "tensor %s must be F32, is ggml type %d", name.c_str(), x.type);
    *out = x;
    return ORCD_OK;
}

// gpt-oss's attention extras and its mixture of experts.
static orcd_status bind_gpt_oss(const orcd_model_config &c, const TensorMap &t, int i,
                                LayerWeights *l) {
    auto name = [i](const char *suffix) { return "blk." + std::to_string(i) + "." + suffix; };
    int d = c.embedding_length, n = c.expert_count, f = c.expert_feed_forward_length;
    ORCD_TRY(find(t, name("attn_output.bias"), d, 1, &l->attn_output_bias));
    ORCD_TRY(find(t, name("attn_sinks.weight"), c.head_count, 1, &l->attn_sinks));
    ORCD_TRY(find(t, name("ffn_gate_inp.weight"), d, n, &l->ffn_gate_inp, 1, true));
    ORCD_TRY(find(t, name("ffn_gate_inp.bias"), n, 1, &l->ffn_gate_inp_bias));
    ORCD_TRY(find(t, name("ffn_gate_exps.weight"), d, f, &l->ffn_gate_exps, n));
    ORCD_TRY(find(t, name("ffn_up_exps.weight"), d, f, &l->ffn_up_exps, n));
    ORCD_TRY(find(t, name("ffn_down_exps.weight"), f, d, &l->ffn_down_exps, n));
    ORCD_TRY(find(t, name("ffn_gate_exps.bias"), f, n, &l->ffn_gate_exps_bias, 1, true));
    ORCD_TRY(find(t, name("ffn_up_exps.bias"), f, n, &l->ffn_up_exps_bias, 1, true));
    ORCD_TRY(find(t, name("ffn_down_exps.bias"), d, n, &l->ffn_down_exps_bias, 1, true));
    if (l->ffn_gate_exps.type != l->ffn_up_exps.type)
        return fail(ORCD_ERR_INVALID, "blk.%d: ffn_gate_exps (type %d) and ffn_up_exps (type %d) "
                    "differ", i, l->ffn_gate_exps.type, l->ffn_up_exps.type);
    return find(t, name("post_attention_norm.weight"), d, 1, &l->ffn_norm);
}

static orcd_status bind_layer(const orcd_model_config &c, const TensorMap &t, int i,
                              LayerWeights *l) {
    auto name = [i](const char *suffix) { return "blk." + std::to_string(i) + "." + suffix; };
    int d = c.embedding_length, q = q_dim(c), kv = kv_dim(c), f = c.feed_forward_length;
    ORCD_TRY(find(t, name("attn_norm.weight"), d, 1, &l->attn_norm));
    if (fused_tensors(c)) {
        ORCD_TRY(find(t, name("attn_qkv.weight"), d, q + 2 * kv, &l->attn_qkv));
    } else {
        ORCD_TRY(find(t, name("attn_q.weight"), d, q, &l->attn_q));
        ORCD_TRY(find(t, name("attn_k.weight"), d, kv, &l->attn_k));
        ORCD_TRY(find(t, name("attn_v.weight"), d, kv, &l->attn_v));
    }
    if (c.arch == ORCD_ARCH_QWEN2 || c.arch == ORCD_ARCH_GPT_OSS) {
        ORCD_TRY(find(t, name("attn_q.bias"), q, 1, &l->attn_q_bias));
        ORCD_TRY(find(t, name("attn_k.bias"), kv, 1, &l->attn_k_bias));
        ORCD_TRY(find(t, name("attn_v.bias"), kv, 1, &l->attn_v_bias));
    }
    ORCD_TRY(find(t, name("attn_output.weight"), q, d, &l->attn_output));
    if (c.arch == ORCD_ARCH_GPT_OSS) return bind_gpt_oss(c, t, i, l);
    ORCD_TRY(find(t, name("ffn_norm.weight"), d, 1, &l->ffn_norm));
    if (fused_tensors(c)) {
        ORCD_TRY(find(t, name("ffn_up.weight"), d, 2 * f, &l->ffn_up));
    } else {
        ORCD_TRY(find(t, name("ffn_gate.weight"), d, f, &l->ffn_gate));
        ORCD_TRY(find(t, name("ffn_up.weight"), d, f, &l->ffn_up));
    }
    return find(t, name("ffn_down.weight"), f, d, &l->ffn_down);
}

JointGroups joint_tensors(const orcd_model_config &c) {
    JointGroups groups;
    if (fused_tensors(c)) return groups;  // the file's own
    for (int i = 0; i < c.block_count; ++i) {
        std::string b = "blk." + std::to_string(i) + ".";
        groups.push_back({b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"});
        groups.push_back({b + "attn_q.bias", b + "attn_k.bias", b + "attn_v.bias"});
        groups.push_back({b + "ffn_gate.weight", b + "ffn_up.weight"});
    }
    return groups;
}

// Whether each tensor's bytes end where the next one's begin, all of one type.
static bool side_by_side(std::initializer_list<const Tensor *> tensors) {
    const Tensor *prev = nullptr;
    for (const Tensor *t : tensors) {
        if (!t->data) return false;
        if (prev && (static_cast<const char *>(prev->data) + prev->nbytes != t->data ||
                     prev->type != t->type))
            return false;
        prev = t;
    }
    return true;
}

// One tensor of a's rows and then b's (and c's), at a's address.
static Tensor joined(const Tensor &a, const Tensor &b, const Tensor *c = nullptr) {
    Tensor t = a;
    t.ne1 += b.ne1 + (c ? c->ne1 : 0);
    t.nbytes += b.nbytes + (c ? c->nbytes : 0);
    return t;
}

// Vectors a, b, c end to end, at a's address.
static Tensor joined_vectors(const Tensor &a, const Tensor &b, const Tensor &c) {
    Tensor t = a;
    t.ne0 += b.ne0 + c.ne0;
    t.nbytes += b.nbytes + c.nbytes;
    return t;
}

// Each layer's q, k, v bound as one tensor where they were placed side by side, or its q and k
// where v's format differs (loader.cu places the leading alike members of a group); its gate
// and up as one where every layer's were (the activations' layout: all layers or none).
static void bind_joint(const orcd_model_config &c, bool joint, Weights *w) {
    bool gate_up = joint && !fused_tensors(c), qkv = false;
    for (const LayerWeights &l : w->layers)
        gate_up = gate_up && side_by_side({&l.ffn_gate, &l.ffn_up});
    for (LayerWeights &l : w->layers) {
        if (gate_up) l.ffn_up = joined(l.ffn_gate, l.ffn_up), l.ffn_gate = Tensor{};
        bool biases = !l.attn_q_bias.data ||
                      side_by_side({&l.attn_q_bias, &l.attn_k_bias, &l.attn_v_bias});
        if (!joint || fused_tensors(c) || !biases || !side_by_side({&l.attn_q, &l.attn_k}))
            continue;
        if (side_by_side({&l.attn_q, &l.attn_k, &l.attn_v}))
            l.attn_qkv = joined(l.attn_q, l.attn_k, &l.attn_v), l.attn_v = Tensor{};
        else l.attn_qkv = joined(l.attn_q, l.attn_k);
        l.attn_q = l.attn_k = Tensor{};
        if (l.attn_q_bias.data)
            l.attn_qkv_bias = joined_vectors(l.attn_q_bias, l.attn_k_bias, l.attn_v_bias);
        qkv = true;
    }
    w->joint_qkv = qkv || fused_tensors(c);
    w->joint_gate_up = gate_up || fused_tensors(c);
}

orcd_status bind_weights(const orcd_model_config &c, const TensorMap &t, bool joint, Weights *w) {
    int d = c.embedding_length;
    ORCD_TRY(find(t, "token_embd.weight", d, c.vocab_size, &w->token_embd));
    w->layers.assign(c.block_count, LayerWeights{});
    for (int i = 0; i < c.block_count; ++i) ORCD_TRY(bind_layer(c, t, i, &w->layers[i]));
    bind_joint(c, joint, w);
    ORCD_TRY(find(t, "output_norm.weight", d, 1, &w->output_norm));
    if (!t.count("output.weight")) {
        w->output = w->token_embd;
        return ORCD_OK;
    }
    return find(t, "output.weight", d, c.vocab_size, &w->output);
}

size_t kv_cache_bytes(const orcd_model_config &c) {
    return 2 * size_t(c.block_count) * kv_dim(c) * c.ctx * sizeof(half);
}

orcd_status kv_cache_alloc(Allocator &alloc, const orcd_model_config &c, KvCache *kv) {
    kv->layer_elems = size_t(kv_dim(c)) * c.ctx;
    ORCD_TRY(alloc.alloc(&kv->k, kv->layer_elems * c.block_count, "KV cache (keys)"));
    return alloc.alloc(&kv->v, kv->layer_elems * c.block_count, "KV cache (values)");
}

orcd_status rope_table_alloc(Allocator &alloc, const orcd_model_config &c, RopeTable *t,
                             cudaStream_t stream) {
    int pairs = c.rope_dimension_count / 2;
    std::vector<double> inv_freq(pairs);
    for (int i = 0; i < pairs; ++i) {
        inv_freq[i] = std::pow(double(c.rope_freq_base), -2.0 * i / c.rope_dimension_count);
        if (c.rope_factors) inv_freq[i] /= c.rope_factors[i];
    }
    double *dev;
    ORCD_TRY(alloc.alloc(&dev, pairs, "rope table"));
    ORCD_CUDA(cudaMemcpyAsync(dev, inv_freq.data(), pairs * sizeof(double),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaStreamSynchronize(stream));  // inv_freq is a local
    *t = {dev, c.rope_dimension_count, c.rope_neox != 0, c.rope_scale};
    return ORCD_OK;
}

orcd_status forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                    const int *pos0, bool all_logits, cudaStream_t stream) {
    if (n < 1 || n > a.rows || (all_logits && n > a.logits_rows))
        return fail(ORCD_ERR_INVALID, "forward of %d tokens on buffers for %d", n, a.rows);
    if (m.cfg.arch == ORCD_ARCH_GPT_OSS)
        return gpt_oss_forward(m, a, ids, n, pos0, all_logits, stream);
    return llama_forward(m, a, ids, n, pos0, all_logits, stream);
}

orcd_status prefill_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                           const int *pos0, cudaStream_t stream) {
    if (n < 2 || n > a.rows)
        return fail(ORCD_ERR_INVALID, "prefill of %d tokens on buffers for %d", n, a.rows);
    if (m.cfg.arch == ORCD_ARCH_GPT_OSS) return gpt_oss_layers(m, a, ids, n, pos0, stream);
    return llama_layers(m, a, ids, n, pos0, stream);
}

orcd_status prefill_logits(const Model &m, const Activations &a, int n, cudaStream_t stream) {
    return logits(Pass{m, a, n, nullptr, stream}, false);
}

}  // namespace orcd
