#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "attention.cuh"
#include "orcd_cuda.h"

namespace orcd {

// θ_i = pos · inv_freq[i] for i < dims/2, inv_freq = base^(-2i/dims) / factor_i (longrope);
// cos and sin are scaled by `scale` (longrope's attention factor).
struct RopeTable {
    const double *inv_freq;  // device, dims/2 values
    int dims;
    bool neox;               // pairs (i, i + dims/2); else (2i, 2i + 1)
    float scale;
};

// Pair i's (< dims/2) cos and sin at position pos: the angle in double (the same float32 cos
// and sin as the NumPy reference at any position), scaled.
struct PairAngle {
    float c, s;
};
__device__ __forceinline__ PairAngle pair_angle(int i, const RopeTable &t, int pos) {
    double theta = double(pos) * t.inv_freq[i];
    return {float(cos(theta) * t.scale), float(sin(theta) * t.scale)};
}

// Pair i of the head at h rotated in place by its angle a.
__device__ __forceinline__ void rotate_pair(float *h, int i, const RopeTable &t, PairAngle a) {
    int x = t.neox ? i : 2 * i, y = t.neox ? i + t.dims / 2 : 2 * i + 1;
    float xa = h[x], xb = h[y];
    h[x] = xa * a.c - xb * a.s;
    h[y] = xa * a.s + xb * a.c;
}

// rope on every q head (`heads`) and kv head of n rows (row i at position *pos0 + i; q and k
// rows `q_stride` and `kv_stride` apart, v's as k's), in place; then each kv head's rotated K
// and its V into the caches (AttentionShape's layout) at those positions. Head size and kv
// heads are s's; head_dim must be at most kMaxHeadDim.
orcd_status rope_store(float *q, float *k, const float *v, int q_stride, int kv_stride, int n,
                       int heads, const RopeTable &table, half *k_cache, half *v_cache,
                       const AttentionShape &s, const int *pos0, cudaStream_t stream,
                       bool overlap = false);

}  // namespace orcd
