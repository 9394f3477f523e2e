// Log-probabilities on the GPU (orcd/engine/logprobs.py): log-softmax of raw logits rows at
// chosen ids, and each row's most likely ids. Launched only for a job that asks for them.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "alloc.cuh"

namespace orcd {

// Logits per block of the first pass: each block reduces one slice of a row to its max, its
// sum of exp(l - max) and its own top ids; a second pass merges the slices of each row.
constexpr int kLogprobSlice = 2048;

struct LogprobScratch {
    int vocab = 0, rows = 0, slices = 0;
    float *slice_max = nullptr;      // [rows][slices]
    float *slice_sum = nullptr;      // [rows][slices]
    float *top_values = nullptr;     // [rows][slices][ORCD_MAX_TOP_LOGPROBS]
    int32_t *top_ids = nullptr;      // [rows][slices][ORCD_MAX_TOP_LOGPROBS]
    orcd_logprob *records = nullptr; // [rows]
};

size_t logprob_scratch_bytes(int vocab, int rows);
orcd_status logprob_scratch_alloc(Allocator &alloc, int vocab, int rows, LogprobScratch *s);

// records[r] = {ids[r], log p(ids[r]) under row r of logits[rows][vocab], the top_n (0..20)
// ids of row r with their log p, most likely first, equal values lower id first}.
// rows <= s.rows; ids in device memory.
orcd_status token_logprobs(const LogprobScratch &s, const float *logits, int rows,
                           const int32_t *ids, int top_n, cudaStream_t stream);

}  // namespace orcd
