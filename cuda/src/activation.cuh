#pragma once
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// x[i, c] += b[c] for n rows of `cols` (row i at x + i * stride): qwen2's Q/K/V bias.
orcd_status add_bias(float *x, int stride, const float *b, int n, int cols, cudaStream_t stream);

// x += y over `count` values: the residual connection.
orcd_status residual(float *x, const float *y, int count, cudaStream_t stream);

// out[i, :] = silu(gate[i, :]) * up[i, :] (rows at gate/up + i * stride), out is [n, ffn].
orcd_status swiglu(const float *gate, const float *up, int stride, float *out, int n, int ffn,
                   cudaStream_t stream, bool overlap = false);

}  // namespace orcd
