// The steps of a transformer forward pass over n tokens (prefill, or one token step by step),
// shared by the architectures' passes (llama.cu, gpt_oss.cu): each names the math and picks
// the kernel (matvec for one token, matmul for several).
#pragma once
#include "model.cuh"

namespace orcd {

struct Pass {
    const Model &m;
    const Activations &a;
    int n;
    const int *pos0;
    cudaStream_t stream;
};

// Whether the pass's kernels (its matmuls, norms, rope, attention, swiglu) are launched to
// overlap the one before them (overlap.cuh): as a.matmul.overlap says, for all of them.
bool overlaps(const Pass &p);
// y[n, rows] = x[n, cols] Wᵀ (+ bias); a token's row ld floats after the last (0: rows)
orcd_status project(const Pass &p, const Tensor &w, const float *x, float *y, int n,
                    const Tensor *bias = nullptr, int ld = 0);
// a.x += x Wᵀ (+ bias) over p.n rows: a projection back into the residual stream
orcd_status project_residual(const Pass &p, const Tensor &w, const float *x,
                             const Tensor *bias = nullptr);
// out = rmsnorm(x) · w over n rows of embedding_length
orcd_status rmsnorm(const Pass &p, const float *x, const Tensor &w, float *out, int n);
// Q, K, V of a.xn (+ their biases when the layer has them)
orcd_status qkv(const Pass &p, const LayerWeights &l, const QkvView &v);
// rope on Q and K, then K and V into layer i's cache (one launch)
orcd_status rope_store(const Pass &p, int layer, const QkvView &v);
// attention over layer i's cache into a.att: the layer's window and sinks when it has them
orcd_status attention(const Pass &p, int layer, const QkvView &v);
// x = token_embd[ids]
orcd_status embed(const Pass &p, const int32_t *ids);
// logits of every row (all_logits) or of the last: rmsnorm → output
orcd_status logits(const Pass &p, bool all_logits);

}  // namespace orcd
