#pragma once
#include <cuda_runtime.h>
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

// Rotates the first `dims` features of every head of n rows of x (row i at x + i * stride,
// at position *pos0 + i), in place.
orcd_status rope(float *x, int n, int stride, int heads, int head_dim, const RopeTable &table,
                 const int *pos0, cudaStream_t stream);

}  // namespace orcd
