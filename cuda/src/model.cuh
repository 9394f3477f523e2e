// A model in VRAM (the llama family and gpt-oss): the config, the weights as plain structs whose
// fields mirror the GGUF tensor names, the FP16 KV cache, the rope table, and the activations
// of a pass.
#pragma once
#include <cuda_fp16.h>
#include <string>
#include <unordered_map>
#include <vector>
#include "alloc.cuh"
#include "attention.cuh"
#include "moe.cuh"
#include "ops.cuh"
#include "options.cuh"
#include "rope.cuh"

namespace orcd {

// A tensor in VRAM as GGUF stores it: ne2 matrices (experts) of ne1 rows of ne0 values in
// format `type`.
struct Tensor {
    const void *data = nullptr;
    int type = 0;
    int64_t ne0 = 0, ne1 = 0, ne2 = 1;
    size_t nbytes = 0;
    const float *f32() const { return static_cast<const float *>(data); }
};

using TensorMap = std::unordered_map<std::string, Tensor>;

struct LayerWeights {
    Tensor attn_norm;
    Tensor attn_q, attn_k, attn_v;            // llama, qwen2; absent where attn_qkv holds them
    Tensor attn_qkv;                          // rows Q, then K, then V: phi3's, or joint; or
                                              // Q, K only, where V's format differs (attn_v)
    Tensor attn_q_bias, attn_k_bias, attn_v_bias;  // qwen2 (`attn_q.bias` ...)
    Tensor attn_qkv_bias;                     // the three side by side, with a joint attn_qkv
    Tensor attn_output;
    Tensor attn_output_bias, attn_sinks;      // gpt-oss
    Tensor ffn_norm;                          // gpt-oss: post_attention_norm
    Tensor ffn_gate;                          // absent in phi3 and where joint: ffn_up holds
                                              // gate, then up
    Tensor ffn_up, ffn_down;
    // gpt-oss's mixture of experts: the router (ffn_gate_inp) and the experts' matrices
    // (ffn_{gate,up,down}_exps, ne2 = experts), each with its bias.
    Tensor ffn_gate_inp, ffn_gate_inp_bias;
    Tensor ffn_gate_exps, ffn_up_exps, ffn_down_exps;
    Tensor ffn_gate_exps_bias, ffn_up_exps_bias, ffn_down_exps_bias;
};

struct Weights {
    Tensor token_embd;
    std::vector<LayerWeights> layers;
    Tensor output_norm;
    Tensor output;  // token_embd when the file has no output.weight (tied)
    // Q, K, V rows of a token side by side in the activations (qkv_view): phi3's file has one
    // matrix of them, other files' were placed side by side at load (joint_tensors), in every
    // layer, or in some (the real Qwen2.5 Q4_K_M file's v is Q8_0 in 13 of 24 layers: there
    // only q and k), whose other projections then write into that layout. Gate and up rows one
    // matrix (ffn_up) in every layer or in none (ffn_view).
    bool joint_qkv = false, joint_gate_up = false;
};

struct KvCache {
    half *k = nullptr, *v = nullptr;  // [block_count][head_count_kv][ctx][head_dim]
    size_t layer_elems = 0;
};

struct DecodeLayer;
struct FusedMatvec;
struct ChunkPlan;

// The persistent decode kernel's plan (decode_persistent.cu): per layer its stages' ops, built
// at load for the decode step's own buffers (x) and position (pos), in device memory, and the
// shape of each block's ring of weight rows in shared memory.
struct PersistentPlan {
    const DecodeLayer *layers = nullptr;
    const FusedMatvec *logits = nullptr;
    unsigned *barrier = nullptr;  // the grid barrier's arrivals and departures
    int blocks = 0;               // all resident at once
    size_t smem = 0;              // dynamic shared memory a block: x_bytes, then the ring
    ChunkPlan *chunks = nullptr;  // every block's chunks of weight rows, in stage order
    int *first_chunk = nullptr;   // block b's from first_chunk[b] to first_chunk[b + 1]
    int slots = 0;
    uint32_t slot_bytes = 0, x_bytes = 0;
    const float *x = nullptr;
    const int *pos = nullptr;
};

struct Model {
    orcd_model_config cfg{};
    Weights w;
    KvCache kv;
    RopeTable rope{};
    DecodePath decode = DecodePath::steps;  // how one token goes through: decode_path_for
    MatvecPath matvec = MatvecPath::q8_1;   // options.cuh's ORCD_MATVEC
    bool overlap = false;  // the fused decode kernels overlap their predecessors (ORCD_OVERLAP)
    FusedTuning fused;     // how the fused decode matvecs share out their work (options.cuh)
    PersistentPlan plan;                    // DecodePath::persistent
};

// Device buffers of a forward pass over up to `rows` tokens.
struct Activations {
    int rows = 0, logits_rows = 0;
    float *x = nullptr;       // [rows, embedding_length] the residual stream
    float *xn = nullptr;      // [rows, embedding_length] its normed copy
    float *qkv = nullptr;     // Q, K, V of every row (see QkvView below)
    float *att = nullptr;     // [rows, q_dim] attention output
    float *ffn = nullptr;     // gate and up of every row
    float *hidden = nullptr;  // [rows, feed_forward_length] swiglu(gate, up)
    float *proj = nullptr;    // [rows, embedding_length] attn_output / ffn_down result
    float *logits = nullptr;  // [logits_rows, vocab_size]
    float *partial = nullptr; // flash-decoding partials
    float *prefill_partial = nullptr;  // attention_prefill's key-split partials (rows > 1)
    size_t prefill_partial_floats = 0;
    // The fused decode step's: hidden as Q8_1 (ffn int8, then a scale per 32), and zeroed
    // counters, head_count for attention_decode_one_launch then one per 32 hidden values.
    int8_t *hidden_q = nullptr;
    int *splits_done = nullptr, *groups_done = nullptr;
    int32_t *ids = nullptr;   // [rows] token ids
    int *pos0 = nullptr;      // position of row 0
    void *moe_scratch = nullptr;  // gpt-oss: moe()'s routing and expert activations
    MatmulScratch matmul;         // the split-K sums of a short prompt's projections (ops.cuh)
};

// Rows of Q, K and V inside Activations::qkv: side by side in one row of a token where the
// weights are joint (Weights::joint_qkv), else three blocks of rows (each matmul its own).
struct QkvView {
    float *q, *k, *v;
    int q_stride, kv_stride;
};
QkvView qkv_view(const Model &m, const Activations &a);

// Gate and up rows inside Activations::ffn, likewise (phi3's ffn_up holds gate, then up).
struct FfnView {
    float *gate, *up;
    int stride;
};
FfnView ffn_view(const Model &m, const Activations &a);

AttentionShape attention_shape(const orcd_model_config &c);
size_t activation_bytes(const orcd_model_config &c, int rows, int logits_rows);
orcd_status activations_alloc(Allocator &alloc, const orcd_model_config &c, int rows,
                              int logits_rows, cudaStream_t stream, Activations *a);

// The tensors to place side by side at load (upload_tensors), so that one launch multiplies
// them together: each layer's q, k, v and their biases, and its gate and up. A group whose
// tensors differ in type is left apart.
using JointGroups = std::vector<std::vector<std::string>>;
JointGroups joint_tensors(const orcd_model_config &c);
// Binds every tensor the architecture needs; ORCD_ERR_INVALID naming a missing one. With
// `joint`, where every layer's groups of joint_tensors lie side by side, each is bound as one.
orcd_status bind_weights(const orcd_model_config &c, const TensorMap &t, bool joint, Weights *w);
size_t kv_cache_bytes(const orcd_model_config &c);
orcd_status kv_cache_alloc(Allocator &alloc, const orcd_model_config &c, KvCache *kv);
// inv_freq of the rope, divided by the config's rope_factors (longrope, YaRN) when it has them.
orcd_status rope_table_alloc(Allocator &alloc, const orcd_model_config &c, RopeTable *t,
                             cudaStream_t stream);

// The forward pass: n tokens ids[0..n) at positions *pos0 + i (device memory), appended to
// the KV cache. Logits of every row when all_logits, else of the last row only.
orcd_status llama_forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                          const int *pos0, bool all_logits, cudaStream_t stream);
// Its embeddings and layers alone, step by step, leaving the rows in a.x (no logits).
orcd_status llama_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                         const int *pos0, cudaStream_t stream);

// The same forward pass for one token (id, at *pos) in fused kernels (decode_fused.cu), taken
// when m.decode is DecodePath::fused.
orcd_status llama_decode_fused(const Model &m, const Activations &a, const int32_t *id,
                               const int *pos, cudaStream_t stream);
// ... and in one persistent kernel (decode_persistent.cu), when m.decode is
// DecodePath::persistent.
orcd_status llama_decode_persistent(const Model &m, const Activations &a, const int32_t *id,
                                    const int *pos, cudaStream_t stream);
// Builds m.plan for the decode step's activations a and position pos (device), with
// blocks_per_sm blocks per SM (0: the default, one); where the GPU has no bulk copy engine
// (before sm_90), a ring of two slots does not fit or an op takes the plain path, sets
// m.decode to DecodePath::fused instead.
orcd_status persistent_plan_build(Allocator &alloc, Model &m, const Activations &a,
                                  const int *pos, int blocks_per_sm, size_t weight_bytes,
                                  cudaStream_t stream);
// What the plan may take of VRAM, for a model whose weights take weight_bytes.
size_t persistent_plan_bytes(const orcd_model_config &c, size_t weight_bytes);
// The path one token takes: the one options ask for (ORCD_FUSED), or none asked the fused
// kernels, where the model fits it (widths up to kFusedMaxCols, gate and up of one format;
// the persistent kernel: the llama family too); else step by step.
DecodePath decode_path_for(const Options &o, const orcd_model_config &c, const Weights &w);

// gpt-oss (gpt_oss.cu): attention with biases, sinks and a sliding window on even layers,
// YaRN rope, a mixture of experts; one token through the fused matvecs unless m.decode is
// DecodePath::steps.
orcd_status gpt_oss_forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                            const int *pos0, bool all_logits, cudaStream_t stream);
orcd_status gpt_oss_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                           const int *pos0, cudaStream_t stream);
// Layer i's attention shape: gpt-oss slides its window on the even layers.
AttentionShape layer_attention_shape(const orcd_model_config &c, int layer);
// A gpt-oss layer's experts as moe() takes them; their shape alone without a layer.
MoeWeights moe_weights(const orcd_model_config &c, const LayerWeights *l = nullptr);

// The architecture's forward pass (llama_forward or gpt_oss_forward).
orcd_status forward(const Model &m, const Activations &a, const int32_t *ids, int n,
                    const int *pos0, bool all_logits, cudaStream_t stream);
// The same pass of n > 1 tokens in two parts: the embeddings and layers (what only *pos0, in
// device memory, places: a CUDA graph of it serves any position), then the last row's logits.
orcd_status prefill_layers(const Model &m, const Activations &a, const int32_t *ids, int n,
                           const int *pos0, cudaStream_t stream);
orcd_status prefill_logits(const Model &m, const Activations &a, int n, cudaStream_t stream);

}  // namespace orcd
