#pragma once
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) * w, for n rows of `cols`.
// overlap: launched to overlap the kernel before it (overlap.cuh), as every kernel of a
// prefill's layers may be (pass.cuh).
orcd_status rmsnorm(const float *x, const float *w, float *out, int n, int cols, float eps,
                    cudaStream_t stream, bool overlap = false);

}  // namespace orcd
