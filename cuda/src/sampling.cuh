#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "alloc.cuh"

namespace orcd {

// Sampling parameters as the kernels read them, from device memory (a CUDA graph replays
// the same kernels for every job; a job writes its parameters here).
struct SamplingArgs {
    float temperature, top_p, min_p, repetition_penalty;
    int top_k;
    uint32_t key[2];  // Philox key: (seed & 0xffffffff, seed >> 32)
};

SamplingArgs sampling_args(const orcd_sampling &p);

// What changes every step, in device memory: the token fed to the next forward pass (the
// sampler writes it), its position, the step, and the length of `history`.
struct StepState {
    int32_t token;
    int32_t pos;
    int32_t step;
    int32_t n_history;
};

// Device buffers of the sampler for a vocabulary, and the sorts' temporary storage.
struct Sampler {
    int vocab = 0;
    float *work = nullptr;         // penalised, tempered logits; then exp(l - max)
    float *sorted = nullptr;       // `work` sorted descending; then cumulative probabilities
    int32_t *ids = nullptr;        // 0..vocab-1
    int32_t *sorted_ids = nullptr; // the ids of `sorted`
    uint64_t *keys = nullptr;      // (probability, lower id first) of each kept id
    uint64_t *sorted_keys = nullptr;
    int32_t *drawn_ids = nullptr;  // the ids of `sorted_keys`
    int2 *blocks = nullptr;        // (start, count) of the softmax sum's pairwise blocks
    float *block_sums = nullptr;
    uint8_t *seen = nullptr;       // ids present in the history (repetition penalty)
    void *sort_temp = nullptr;
    size_t sort_temp_bytes = 0;
};

size_t sampler_bytes(int vocab);
orcd_status sampler_init(Sampler &s, Allocator &alloc, int vocab, cudaStream_t stream);

// The sampler's kernels for a job, known on the host (a decode graph is captured for each):
// greedy (temperature 0) takes the argmax path; without a repetition penalty (and a mask) that
// path reads the logits as they are.
struct SamplerPath {
    bool greedy = false;
    bool penalized = true;
};

SamplerPath sampler_path(const orcd_sampling &p);

// Picks the next id from logits[vocab] as orcd.engine.sampling.sample does, writes it to
// state->token and history[state->n_history], and advances the state a step: pos, step and
// n_history each one on.
// history holds up to history_cap ids. mask: NULL, or a bitmask of the allowed ids (bit i % 32
// of word i / 32); the others count as -inf logits, as orcd.engine.constraint.masked makes them.
orcd_status sample(const Sampler &s, const float *logits, const SamplingArgs *args,
                   StepState *state, int32_t *history, int history_cap, SamplerPath path,
                   const uint32_t *mask, cudaStream_t stream);

}  // namespace orcd
