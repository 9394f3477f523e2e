// The engine behind the C API's opaque handle: one model on one device, its decode state and
// the ring through which the decode loop hands ids to Python.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "alloc.cuh"
#include "logprobs.cuh"
#include "model.cuh"
#include "sampling.cuh"

namespace orcd {

// Ids of the running job, written by the decode loop's host thread into pinned host memory
// after each step, read by orcd_engine_read_tokens. The writer waits while the ring is full.
struct TokenRing {
    static constexpr long kCapacity = 4096;
    int32_t *slots = nullptr;
    orcd_logprob *records = nullptr;  // beside each slot, for a job that asks for logprobs
    mutable std::mutex mu;
    std::condition_variable cv;
    long published = 0, consumed = 0;
    long job = 0;  // start_job's count: which job the ids are of (written under both locks)
    bool finished = true;
};

// The engine's decode thread and the job handed to it (orcd_engine_start_job): the caller
// returns at once, and the job starts without waiting for any lock the caller's runtime holds
// (Python's GIL).
struct JobSlot {
    std::vector<int32_t> prompt, stop_ids;
    int n_cached = 0, max_tokens = 0;
    orcd_sampling params{};
    bool running = false;
    std::atomic<bool> pending{false}, quit{false};  // also polled without the lock (decode.cu)
    orcd_status status = ORCD_OK;
    std::string error;  // the ended job's message
    std::mutex mu;
    std::condition_variable cv;
    std::thread thread;
};

// What a job asks beyond ids (orcd_sampling's last fields), the device records of its logprobs,
// its prompt's records, and the hand-over of a constrained job's masks: the host writes the
// mask of step `mask_step` into mask_host (under the ring's lock), the decode loop uploads it.
struct JobExtras {
    int top_logprobs = -1;
    bool prompt_logprobs = false;
    bool constrained = false;
    LogprobScratch step_logprobs;             // one row, allocated at load
    LogprobScratch prompt_logprobs_scratch;   // up to kScoringChunk rows, in the job's scope
    std::vector<orcd_logprob> prompt_records;
    std::vector<uint32_t> mask_host;          // (vocab + 31) / 32 words
    uint32_t *mask = nullptr;                 // device
    int mask_step = -1;
};

size_t job_extras_bytes(const orcd_model_config &c);
orcd_status job_extras_alloc(Allocator &alloc, const orcd_model_config &c, JobExtras *x);

}  // namespace orcd

struct orcd_engine;

namespace orcd {

// The decode loop's side of JobExtras (extras.cu); each does nothing for a job that did not
// ask. Prompt scoring takes chunks of kScoringChunk rows, since it keeps every row's logits.
constexpr int kScoringChunk = 128;
void extras_begin(orcd_engine *e, const orcd_sampling &params, int n_prompt);
// A job that scores its prompt: the logits of `rows` prompt rows and their logprobs' scratch,
// in the job's allocation scope. The only device memory a job allocates: the budget checked
// at load (orcd_engine_vram_required) holds one row of logits per prefill chunk, not these.
orcd_status scoring_alloc(orcd_engine *e, int rows, float **logits);
// Records of prompt tokens start+1 .. start+n (the ids after rows 0..n-1 of logits).
orcd_status score_prompt(orcd_engine *e, const float *logits, int start, int n);
// The record of the id just sampled (state->token) from logits, into the step scratch.
orcd_status score_token(orcd_engine *e, const float *logits);
// Waits for the host's mask of generated token `step` and uploads it.
orcd_status await_mask(orcd_engine *e, int step);

// Prompt chunks of up to kGraphedPrefillRows tokens are replayed from a CUDA graph of their
// layers, one per size bucket of kPrefillBucket rows (decode.cu).
constexpr int kPrefillBucket = 16, kGraphedPrefillRows = 256;

// What a decode step reads from device memory, so that one captured graph serves every step
// and job; the graphs themselves, one per sampling path (index: greedy, penalized, masked); and
// the prefill graphs, one per bucket.
struct DecodeState {
    StepState *state = nullptr;       // device
    SamplingArgs *args = nullptr;     // device
    int32_t *history = nullptr;       // device, prompt and generated ids
    int history_cap = 0;
    StepState *state_host = nullptr;  // pinned, copied to `state` when a job starts
    // Step k's id is in the ring when token_ready[k % 2] has passed: step k + 1's is recorded
    // before step k's is waited for.
    cudaEvent_t token_ready[2] = {nullptr, nullptr};
    cudaGraphExec_t graph[2][2][2] = {};
    cudaGraphExec_t prefill[kGraphedPrefillRows / kPrefillBucket][2] = {};  // [bucket][keys split]
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
    orcd::Activations step;     // one token: the decode step's buffers
    orcd::Activations prefill;  // up to kPrefillChunk prompt tokens, one row of logits
    orcd::Sampler sampler;
    orcd::DecodeState decode;
    orcd::JobExtras extras;
    orcd::TokenRing ring;
    orcd::JobSlot job;
    orcd_job_times times{};  // written by the decode loop before the ring's lock publishes an id
    std::atomic<bool> cancel{false};
    std::atomic<bool> resident{true};  // the last residency check's answer (a job's or the API's)
};
