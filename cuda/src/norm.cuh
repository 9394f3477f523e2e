#pragma once
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]²) + eps) * w, for n rows of `cols`.
orcd_status rmsnorm(const float *x, const float *w, float *out, int n, int cols, float eps,
                    cudaStream_t stream);

}  // namespace orcd
