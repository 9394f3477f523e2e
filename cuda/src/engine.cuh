// The engine behind the C API's opaque handle: one model on one device, its decode state and
// the ring through which the decode loop hands ids to Python.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include "alloc.cuh"
#include "model.cuh"
#include "sampling.cuh"

namespace orcd {

// Ids of the running job, written by the decode loop's host thread into pinned host memory
// after each step, read by orcd_engine_read_tokens. The writer waits while the ring is full.
struct TokenRing {
    static constexpr long kCapacity = 4096;
    int32_t *slots = nullptr;
    std::mutex mu;
    std::condition_variable cv;
    long published = 0, consumed = 0;
    bool finished = true;
};

// What a decode step reads from device memory, so that one captured graph serves every step
// and job; and the graphs themselves, one per sampling path (index: greedy).
struct DecodeState {
    StepState *state = nullptr;       // device
    SamplingArgs *args = nullptr;     // device
    int32_t *history = nullptr;       // device, prompt and generated ids
    int history_cap = 0;
    StepState *state_host = nullptr;  // pinned, copied to `state` before each step
    cudaEvent_t token_ready = nullptr;
    cudaGraphExec_t graph[2] = {nullptr, nullptr};
};

size_t decode_state_bytes(const orcd_model_config &c);
orcd_status decode_state_alloc(Allocator &alloc, const orcd_model_config &c, DecodeState *d);

}  // namespace orcd

struct orcd_engine {
    int device = 0;
    orcd::Options options;  // read at creation (options.cuh)
    cudaStream_t stream = nullptr;
    orcd::Allocator alloc;
    bool loaded = false;
    orcd::Model model;
    orcd::Activations step;  // one token: the decode step's buffers
    orcd::Sampler sampler;
    orcd::DecodeState decode;
    orcd::TokenRing ring;
    std::atomic<bool> cancel{false};
};
