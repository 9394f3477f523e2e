#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// One layer's FP16 KV cache is laid out [head_count_kv][ctx][head_dim]: a head's keys are
// contiguous. Query head h reads kv head h / (heads / kv_heads). head_dim is a multiple of 8
// (16-byte key loads) and at most kAttentionChunk.
// window > 0: a query at position p sees the keys at p - window < j <= p (llama.cpp
// LLAMA_SWA_TYPE_STANDARD), and no key before them is read; 0: all keys j <= p.
struct AttentionShape {
    int heads, kv_heads, head_dim, ctx;
    int window = 0;
};

// sinks (every attention call): null, or F32 [heads] on the device: one logit per head that
// joins the head's softmax beside the scores q·k/√head_dim, taking probability mass but adding
// no value (gpt-oss). Null is a sink of -∞: bit for bit the plain softmax.

// Positions a decode split covers: flash-decoding splits the cache into chunks of this many.
constexpr int kAttentionChunk = 128;

// Stores k and v of n tokens (row i at k/v + i * stride, heads side by side) at positions
// *pos0 + i of one layer's cache.
orcd_status kv_store(const float *k, const float *v, int stride, int n, half *k_cache,
                     half *v_cache, const AttentionShape &s, const int *pos0, cudaStream_t stream);

// One query's attention over one layer's cache, in one launch (or one persistent-kernel stage):
// per head, `splits` partials and a done counter (zero before and after).
struct DecodeAttention {
    const float *q;
    const half *kc, *vc;
    float *partial, *out;
    int *done;
    AttentionShape s;
    int splits;
    const int *pos0;
    const float *sinks;
};

// The most splits a decode query can see: those of the whole context, or of one window.
int attention_decode_splits(const AttentionShape &s);

// Floats of the per-split partial results attention_decode needs: enough for any window.
size_t attention_decode_partial_floats(const AttentionShape &s);

// Decode: out[heads * head_dim] = softmax(q Kᵀ / √d) V over the positions the query at *pos0
// sees, split into chunks of kAttentionChunk from the first of them (flash-decoding: a window
// touches at most ⌈window / kAttentionChunk⌉ splits wherever *pos0 is) and combined in split
// order (deterministic).
orcd_status attention_decode(const float *q, const half *k_cache, const half *v_cache,
                             float *out, float *partial, const AttentionShape &s,
                             const int *pos0, cudaStream_t stream, const float *sinks = nullptr);

// The same in one launch: the last split of each head to finish combines them, counting
// in done[heads] (zero before; zero again after). The grid depends on the shape alone.
// overlap: launched to overlap the kernel before it (overlap.cuh).
orcd_status attention_decode_one_launch(const float *q, const half *k_cache, const half *v_cache,
                                        float *out, float *partial, int *done,
                                        const AttentionShape &s, const int *pos0,
                                        cudaStream_t stream, const float *sinks = nullptr,
                                        bool overlap = false);

// Floats of the partials attention_prefill's key split may use: the model's buffer.
size_t attention_prefill_partial_floats(const AttentionShape &s);
// Keys of one segment of attention_prefill's key split: a pass whose queries see no more keys
// gains nothing from the split (one segment to walk, then a combine), and is given no partials
// (decode.cu).
constexpr int kPrefillSegmentKeys = 256;

// Prefill: causal attention of n queries (row i at q + i * q_stride, position *pos0 + i) over
// the cache, in tiles of queries against chunks of keys with an online softmax (flash-attention
// style); with a window a tile starts at its first query's first key. out is
// [n, heads * head_dim]. With few query tiles the keys are split over blocks whose partials go
// to `partial` (when they fit its partial_floats); a query's output is the same bits whatever
// the call, tile or split (attention_prefill.cu).
orcd_status attention_prefill(const float *q, int q_stride, const half *k_cache,
                              const half *v_cache, float *out, int n, const AttentionShape &s,
                              const int *pos0, cudaStream_t stream, const float *sinks = nullptr,
                              float *partial = nullptr, size_t partial_floats = 0,
                              bool overlap = false);

}  // namespace orcd
