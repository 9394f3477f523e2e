// Shared by every .cu: the last-error slot and the CUDA call check.
#pragma once
#include <cstdio>
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// Records a failure for orcd_last_error() and returns its status.
orcd_status fail(orcd_status status, const char *fmt, ...);

inline orcd_status check(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return ORCD_OK;
    cudaGetLastError();  // clear the sticky non-fatal error so the next call is judged alone
    return fail(err == cudaErrorMemoryAllocation ? ORCD_ERR_OOM : ORCD_ERR_CUDA,
                "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

}  // namespace orcd

#define ORCD_TRY(expr)                          \
    do {                                        \
        orcd_status _s = (expr);                \
        if (_s != ORCD_OK) return _s;           \
    } while (0)
#define ORCD_CUDA(call) ORCD_TRY(orcd::check((call), #call))
