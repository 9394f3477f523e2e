// The quantized-weight kernels as the forward pass calls them. Every call is asynchronous on
// `stream` and capture-safe for CUDA graphs: no allocation, no synchronisation, and its host
// checks look only at shapes and types, never at data.
// Weights are GGUF tensors as stored: row-major, a row (GGUF ne0) of `cols` values; `cols`
// must be a whole number of blocks and a multiple of 16. Pointers are 16-byte aligned.
// Results are bit-identical from run to run (fixed reduction order, no atomics).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>
#include "options.cuh"
#include "orcd_cuda.h"

namespace orcd {

// y[rows] = W[rows, cols] x[cols]   (decode). MatvecPath::q8_1: quantized weights meet x
// quantized to Q8_1 in shared memory (int8 per value, a scale per 32: each x rounds by at most
// 1/254 of its block's max|x|); float weights, and every format on MatvecPath::f32, meet x in
// F32 (options.cuh's ORCD_MATVEC).
orcd_status matvec(MatvecPath path, int ggml_type, const void *w, const float *x, float *y,
                   int rows, int cols, cudaStream_t stream);

// Y[n, rows] = X[n, cols] W^T   (prefill): F16 tensor cores, F32 accumulation; X and the
// dequantized W are rounded to F16 (relative 2^-11; |values| must stay below 65504).
orcd_status matmul(int ggml_type, const void *w, const float *x, float *y, int rows, int cols,
                   int n, cudaStream_t stream);

// out[n, cols] = dequant(W[ids[i]]); ids must be valid rows (the caller checks them).
orcd_status embed_rows(int ggml_type, const void *w, const int32_t *ids, float *out, int cols,
                       int n, cudaStream_t stream);

}  // namespace orcd
