// The decode loop: prefill the prompt (past the prefix the KV cache still holds from the
// previous job), then one step per token (forward of the last id, then the sampler, which
// advances the step on the device), each id published to the token ring as soon as it is
// known, the next step already launched. The step is captured once in a CUDA graph and
// replayed, and so are a short prompt's layers; ORCD_CUDA_GRAPH=0 launches them kernel by
// kernel (options.cuh).
#include <algorithm>
#include <chrono>
#include <system_error>
#include "context.cuh"
#include "engine.cuh"

using namespace orcd;

namespace orcd {

size_t decode_state_bytes(const orcd_model_config &c) {
    return sizeof(StepState) + sizeof(SamplingArgs) + (size_t(c.ctx) + 1) * sizeof(int32_t);
}

orcd_status decode_state_alloc(Allocator &alloc, const orcd_model_config &c, DecodeState *d) {
    d->history_cap = c.ctx + 1;  // the prompt and every generated id, the last one included
    ORCD_TRY(alloc.alloc(&d->state, 1, "decode step state"));
    ORCD_TRY(alloc.alloc(&d->args, 1, "sampling parameters"));
    return alloc.alloc(&d->history, d->history_cap, "token history");
}

}  // namespace orcd

namespace {

// Forward of state->token at state->pos, then the sampler writes the next id to state->token
// and advances the step; `masked`: only the ids of the grammar mask may be drawn.
orcd_status decode_one_token(orcd_engine *e, SamplerPath path, bool masked) {
    const DecodeState &d = e->decode;
    ORCD_TRY(forward(e->model, e->step, &d.state->token, 1, &d.state->pos, false, e->stream));
    return sample(e->sampler, e->step.logits, d.args, d.state, d.history, d.history_cap, path,
                  masked ? e->extras.mask : nullptr, e->stream);
}

// What `launch` enqueues on e->stream, captured into *exec.
template <class Launch>
orcd_status capture(orcd_engine *e, cudaGraphExec_t *exec, Launch launch) {
    cudaGraph_t graph = nullptr;
    ORCD_CUDA(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
    orcd_status st = launch();
    cudaError_t ended = cudaStreamEndCapture(e->stream, &graph);
    if (st == ORCD_OK) st = check(ended, "cudaStreamEndCapture");
    if (st == ORCD_OK) st = check(cudaGraphInstantiate(exec, graph, 0), "cudaGraphInstantiate");
    if (graph) cudaGraphDestroy(graph);
    return st;
}

orcd_status run_step(orcd_engine *e, SamplerPath path) {
    bool masked = e->extras.constrained;
    if (!e->options.graphs) return decode_one_token(e, path, masked);
    cudaGraphExec_t &exec = e->decode.graph[path.greedy][path.penalized][masked];
    if (!exec) ORCD_TRY(capture(e, &exec, [&] { return decode_one_token(e, path, masked); }));
    return check(cudaGraphLaunch(exec, e->stream), "cudaGraphLaunch decode step");
}

// The rows a chunk of n prompt tokens at `start` is prefilled as from a graph: n rounded up to
// its bucket (kPrefillBucket), where graphs are on, the bucket has a graph (up to
// kGraphedPrefillRows) and the cache has room for the extra rows; else 0, no graph. The extra
// rows prefill id 0 after the prompt's: each row of a prefill is computed apart from the rows
// after it (causal attention; the matmuls' and the attention's tiles and splits are chosen per
// 16 rows or more), so the prompt's rows come out with the same bits; the extra rows' K and V,
// past the prompt, are written over by the decode steps before any step reads them. Not for
// gpt-oss, whose experts would take the extra rows too (their grouping, not their math,
// depends on the rows routed to them).
int graphed_rows(const orcd_engine *e, const Activations &a, int start, int n) {
    int bucket = (n + kPrefillBucket - 1) / kPrefillBucket * kPrefillBucket;
    bool graphed = e->options.graphs && e->options.prefill_graphs && n > 1 &&
                   bucket <= kGraphedPrefillRows && bucket <= a.rows &&
                   start + bucket <= e->model.cfg.ctx && e->model.cfg.arch != ORCD_ARCH_GPT_OSS;
    return graphed ? bucket : 0;
}

// One prompt chunk of n tokens (ids in a.ids, its position in a.pos0): its layers replayed from
// its bucket's graph, captured at the bucket's first use, then the last row's logits; or the
// whole pass kernel by kernel (every_row: the logits of every row, for a scored prompt). The
// graph's kernels are not launched to overlap each other: there the launches are already back
// to back, and an overlapping kernel's blocks, waiting early, slowed a short prompt (H200,
// 32 tokens: 2.57 -> 2.74 ms Qwen2.5-0.5B shape, 1.87 -> 1.97 SmolLM2); kernel by kernel (512
// tokens) they hide the launches (SmolLM2 4.87 -> 4.63 ms).
//
// A chunk whose rows all lie in the first kPrefillSegmentKeys positions gets no partials for the
// attention's key split: one segment of keys to walk, so one launch instead of a split grid of
// the whole cache's segments (mostly empty) and a combine (H200 ncu, Qwen2.5 shape, 20 tokens:
// 7.4 + 3.6 µs a layer). The same bits (attention_prefill.cu).
orcd_status prefill_chunk(orcd_engine *e, const Activations &chunk, int start, int n,
                          bool every_row) {
    int rows = every_row ? 0 : graphed_rows(e, chunk, start, n);
    Activations a = chunk;
    bool split = start + std::max(rows, n) > kPrefillSegmentKeys;
    if (!split) a.prefill_partial = nullptr;
    if (!rows) return forward(e->model, a, a.ids, n, a.pos0, every_row, e->stream);
    a.matmul.overlap = false;
    if (rows > n)
        ORCD_CUDA(cudaMemsetAsync(a.ids + n, 0, (rows - n) * sizeof(int32_t), e->stream));
    cudaGraphExec_t &exec = e->decode.prefill[rows / kPrefillBucket - 1][split];
    if (!exec)
        ORCD_TRY(capture(e, &exec, [&] {
            return prefill_layers(e->model, a, a.ids, rows, a.pos0, e->stream);
        }));
    ORCD_TRY(check(cudaGraphLaunch(exec, e->stream), "cudaGraphLaunch prefill"));
    return prefill_logits(e->model, a, n, e->stream);
}

// Prefills the prompt (already in history) from position n_cached in chunks, on the buffers
// allocated at load; *last: the logits of its last token. A job that scores its prompt keeps
// every row's logits, in smaller chunks from position 0 (a cached prefix has no logits to
// score), into logits of its own (scoring_alloc).
orcd_status prefill(orcd_engine *e, int n_prompt, int n_cached, const float **last) {
    Activations a = e->prefill;
    bool every_row = e->extras.prompt_logprobs;
    if (every_row) {
        n_cached = 0;
        a.logits_rows = std::min(n_prompt, kScoringChunk);
        ORCD_TRY(scoring_alloc(e, a.logits_rows, &a.logits));
    }
    int rows = every_row ? a.logits_rows : std::min(n_prompt - n_cached, a.rows);
    for (int start = n_cached, n = 0; start < n_prompt; start += n) {
        // No chunk of one row after others: alone it would take the decode kernels
        // (reusable_prefix in orcd/engine/base.py keeps cached prompts to two rows or more).
        n = std::min(rows, n_prompt - start);
        if (n_prompt - start - n == 1 && n > 2) --n;
        // From pageable memory: the copy is staged before cudaMemcpyAsync returns.
        ORCD_CUDA(cudaMemcpyAsync(a.pos0, &start, sizeof start, cudaMemcpyHostToDevice, e->stream));
        ORCD_CUDA(cudaMemcpyAsync(a.ids, e->decode.history + start, n * sizeof(int32_t),
                                  cudaMemcpyDeviceToDevice, e->stream));
        ORCD_TRY(prefill_chunk(e, a, start, n, every_row));
        ORCD_TRY(score_prompt(e, a.logits, start, n));
        *last = a.logits + (every_row ? size_t(n - 1) * e->model.cfg.vocab_size : 0);
    }
    return ORCD_OK;
}

orcd_status set_step(orcd_engine *e, StepState s) {
    *e->decode.state_host = s;  // pinned; rewritten only after the job's last step has finished
    return check(cudaMemcpyAsync(e->decode.state, e->decode.state_host, sizeof s,
                                 cudaMemcpyHostToDevice, e->stream), "copy step state");
}

// Once ring slot k is free: the copy of the id just sampled (and its logprob record) into it,
// then token_ready[k % 2].
orcd_status enqueue_id(orcd_engine *e, long k) {
    TokenRing &r = e->ring;
    {
        std::unique_lock<std::mutex> lock(r.mu);
        r.cv.wait(lock, [&] { return k - r.consumed < TokenRing::kCapacity || e->cancel; });
    }
    if (e->cancel) return fail(ORCD_ERR_CANCELLED, "generation cancelled");
    ORCD_CUDA(cudaMemcpyAsync(&r.slots[k % TokenRing::kCapacity], &e->decode.state->token,
                              sizeof(int32_t), cudaMemcpyDeviceToHost, e->stream));
    if (e->extras.top_logprobs >= 0)
        ORCD_CUDA(cudaMemcpyAsync(&r.records[k % TokenRing::kCapacity],
                                  e->extras.step_logprobs.records, sizeof(orcd_logprob),
                                  cudaMemcpyDeviceToHost, e->stream));
    return check(cudaEventRecord(e->decode.token_ready[k % 2], e->stream), "record token event");
}

int64_t now_ns() {  // steady_clock is CLOCK_MONOTONIC, as Python's perf_counter_ns
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Waits for id k (enqueue_id) and publishes it.
orcd_status take_id(orcd_engine *e, long k, int32_t *id) {
    TokenRing &r = e->ring;
    ORCD_CUDA(cudaEventSynchronize(e->decode.token_ready[k % 2]));
    if (k == 0) e->times.first_id = now_ns();
    *id = r.slots[k % TokenRing::kCapacity];
    {
        std::lock_guard<std::mutex> lock(r.mu);
        r.published = k + 1;
    }
    r.cv.notify_all();
    return ORCD_OK;
}

// Decode step k: the forward of id k - 1 and the sampling of id k, which goes to ring slot k.
orcd_status launch_step(orcd_engine *e, SamplerPath path, long k) {
    ORCD_TRY(run_step(e, path));
    ORCD_TRY(score_token(e, e->step.logits));
    return enqueue_id(e, k);
}

// SPEC §4's check before each job, made while the GPU runs the job's prefill: every allocation
// is device memory, or the job fails before its first id is published. Checked before the
// launch, it held the job back by a driver query per allocation (one per weight tensor).
orcd_status check_residency(orcd_engine *e) {
    bool resident = false;
    ORCD_TRY(e->alloc.check_residency(&resident));
    e->resident = resident;
    if (resident) return ORCD_OK;
    return fail(ORCD_ERR_CUDA, "VRAM residency check failed on GPU %d: an allocation is not "
                "device memory; restart the worker", e->device);
}

orcd_status decode_loop(orcd_engine *e, const int32_t *prompt, int n_prompt, int n_cached,
                        const orcd_sampling &params, int max_tokens, const int32_t *stop_ids,
                        int n_stop) {
    const DecodeState &d = e->decode;
    SamplerPath path = sampler_path(params);
    SamplingArgs args = sampling_args(params);
    ORCD_CUDA(cudaMemcpyAsync(d.args, &args, sizeof args, cudaMemcpyHostToDevice, e->stream));
    ORCD_CUDA(cudaMemcpyAsync(d.history, prompt, n_prompt * sizeof(int32_t),
                              cudaMemcpyHostToDevice, e->stream));
    const float *logits = nullptr;
    ORCD_TRY(prefill(e, n_prompt, n_cached, &logits));
    if (max_tokens == 0) return check_residency(e);  // the prompt scored, nothing to generate
    // The last prompt token's place: the sampler moves the state on to the first generated id's.
    ORCD_TRY(set_step(e, {0, n_prompt - 1, 0, n_prompt}));
    ORCD_TRY(await_mask(e, 0));
    ORCD_TRY(sample(e->sampler, logits, d.args, d.state, d.history, d.history_cap, path,
                    e->extras.constrained ? e->extras.mask : nullptr, e->stream));
    ORCD_TRY(score_token(e, logits));
    ORCD_TRY(enqueue_id(e, 0));
    e->times.prefilled = now_ns();
    ORCD_TRY(check_residency(e));
    int limit = std::min(max_tokens, e->model.cfg.ctx - n_prompt + 1);
    // Ahead: step k + 1 is launched before id k is read, so that the GPU never waits for the
    // host between steps; after a stop id, the step launched ahead is left unread. A
    // constrained job's next mask needs id k first.
    bool ahead = e->options.decode_ahead && !e->extras.constrained;
    for (long step = 0;; ++step) {
        bool more = step + 1 < limit;
        if (ahead && more) ORCD_TRY(launch_step(e, path, step + 1));
        int32_t id;
        ORCD_TRY(take_id(e, step, &id));
        if (std::find(stop_ids, stop_ids + n_stop, id) != stop_ids + n_stop || !more)
            return ORCD_OK;
        if (e->cancel) return fail(ORCD_ERR_CANCELLED, "generation cancelled");
        if (!ahead) {
            ORCD_TRY(await_mask(e, int(step + 1)));
            ORCD_TRY(launch_step(e, path, step + 1));
        }
    }
}

orcd_status check_job(const orcd_engine *e, const int32_t *prompt, int n_prompt, int n_cached) {
    const orcd_model_config &c = e->model.cfg;
    if (!e->loaded) return fail(ORCD_ERR_INVALID, "no model loaded");
    if (n_prompt < 1 || n_prompt > c.ctx)
        return fail(ORCD_ERR_INVALID, "a prompt of %d tokens for a context of %d", n_prompt, c.ctx);
    if (n_cached < 0 || n_cached >= n_prompt)
        return fail(ORCD_ERR_INVALID, "%d cached tokens of a prompt of %d (at least one must be "
                    "prefilled)", n_cached, n_prompt);
    for (int i = 0; i < n_prompt; ++i)
        if (prompt[i] < 0 || prompt[i] >= c.vocab_size)
            return fail(ORCD_ERR_INVALID, "prompt token %d is outside the vocabulary", prompt[i]);
    return ORCD_OK;
}

// Ends job `job`'s ids, unless a later job has the ring already: the decode thread publishes
// the end after the job's slot says it is over, and start_job may take the ring in between.
void finish(TokenRing &r, long job) {
    {
        std::lock_guard<std::mutex> lock(r.mu);
        if (r.job == job) r.finished = true;
    }
    r.cv.notify_all();
}

// One job (orcd_engine_start_job's), on the decode thread.
orcd_status run_job(orcd_engine *e, const JobSlot &j) {
    e->times.entered = now_ns();
    const int32_t *prompt = j.prompt.data();
    int n_prompt = int(j.prompt.size()), n_cached = j.n_cached;
    const orcd_sampling &params = j.params;
    orcd_status st = check_job(e, prompt, n_prompt, n_cached);
    if (st == ORCD_OK) st = use_device(e->device);
    if (st == ORCD_OK) extras_begin(e, params, n_prompt);
    if (st == ORCD_OK && (j.max_tokens > 0 || params.prompt_logprobs)) {
        size_t mark = e->alloc.mark();
        st = decode_loop(e, prompt, n_prompt, n_cached, params, j.max_tokens, j.stop_ids.data(),
                         int(j.stop_ids.size()));
        cudaStreamSynchronize(e->stream);  // nothing in flight uses what is freed next
        e->alloc.release_since(mark);       // a scored prompt's buffers, complete or partial
    } else if (st == ORCD_OK) {
        st = check_residency(e);  // a job with nothing to compute is checked all the same
    }
    return st;
}

// After a job the decode thread polls the slot for kIdlePollNs before it sleeps on the
// condition variable: a client's next request usually follows the last answer within a few
// milliseconds (a chat turn, an agent's next step, the bench's back-to-back requests), and a
// thread woken from sleep took 0.2-0.6 ms on the H200 box to start the job (the trace's
// generate_start -> engine_entered). The poll costs one core for at most that long a job.
constexpr long long kIdlePollNs = 5'000'000;

void poll_for_job(JobSlot &j) {
    long long until = now_ns() + kIdlePollNs;
    while (!j.pending.load(std::memory_order_acquire) && !j.quit.load(std::memory_order_acquire) &&
           now_ns() < until)
        std::this_thread::yield();
}

// The engine's decode thread: each job handed to it, until the engine is destroyed. A job's
// status is set before its ring says it has finished, so that a reader who sees the end also
// sees how it ended.
void decode_thread(orcd_engine *e) {
    JobSlot &j = e->job;
    std::unique_lock<std::mutex> lock(j.mu);
    for (;;) {
        j.cv.wait(lock, [&] { return j.pending || j.quit; });
        if (j.quit) return;
        j.pending = false;
        long job = e->ring.job;  // start_job writes it under j.mu too
        lock.unlock();
        orcd_status st = run_job(e, j);  // the slot is not written while the job runs
        lock.lock();
        j.status = st;
        j.error = st == ORCD_OK ? "" : orcd_last_error();
        j.running = false;
        j.cv.notify_all();
        lock.unlock();
        finish(e->ring, job);
        poll_for_job(j);
        lock.lock();
    }
}

}  // namespace

extern "C" void orcd_engine_job_times(const orcd_engine *e, orcd_job_times *out) {
    std::lock_guard<std::mutex> lock(e->ring.mu);  // the first id's lock follows the writes
    *out = e->times;
}

extern "C" orcd_status orcd_engine_start_job(orcd_engine *e, const int32_t *prompt, int n_prompt,
                                             int n_cached, const orcd_sampling *params,
                                             int max_tokens, const int32_t *stop_ids,
                                             int n_stop) {
    JobSlot &j = e->job;
    std::lock_guard<std::mutex> lock(j.mu);
    if (j.running) return fail(ORCD_ERR_INVALID, "a job is still running on the engine");
    if (n_prompt < 0 || n_stop < 0)
        return fail(ORCD_ERR_INVALID, "a prompt of %d tokens, %d stop ids", n_prompt, n_stop);
    j.prompt.assign(prompt, prompt + n_prompt);
    j.stop_ids.assign(stop_ids, stop_ids + n_stop);
    j.n_cached = n_cached;
    j.max_tokens = max_tokens;
    j.params = *params;
    {
        std::lock_guard<std::mutex> ring(e->ring.mu);  // a reader never sees the last job's ids
        e->ring.published = e->ring.consumed = 0;
        e->ring.finished = false;
        ++e->ring.job;
        e->cancel = false;
        e->extras.mask_step = -1;
        e->times = {};
    }
    if (!j.thread.joinable()) {
        try {
            j.thread = std::thread(decode_thread, e);
        } catch (const std::system_error &err) {
            return fail(ORCD_ERR_CUDA, "cannot start the decode thread: %s", err.what());
        }
    }
    j.pending = j.running = true;
    j.status = ORCD_OK;
    j.cv.notify_all();
    return ORCD_OK;
}

extern "C" orcd_status orcd_engine_job_status(orcd_engine *e, int wait, int *running) {
    JobSlot &j = e->job;
    std::unique_lock<std::mutex> lock(j.mu);
    if (wait) j.cv.wait(lock, [&] { return !j.running; });
    *running = j.running;
    if (j.running || j.status == ORCD_OK) return ORCD_OK;
    return fail(j.status, "%s", j.error.c_str());
}

extern "C" orcd_status orcd_engine_read_tokens(orcd_engine *e, int start, int32_t *out, int cap,
                                               int timeout_ms, int *n_out, int *finished,
                                               orcd_logprob *logprobs) {
    TokenRing &r = e->ring;
    std::unique_lock<std::mutex> lock(r.mu);
    r.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                  [&] { return r.published > start || r.finished; });
    if (start < r.consumed || start > r.published)
        return fail(ORCD_ERR_INVALID, "token %d is no longer (or not yet) in the ring", start);
    long n = std::min<long>(r.published - start, cap);
    for (long i = 0; i < n; ++i) out[i] = r.slots[(start + i) % TokenRing::kCapacity];
    for (long i = 0; logprobs && i < n; ++i) logprobs[i] = r.records[(start + i) % TokenRing::kCapacity];
    r.consumed = start + n;
    *n_out = int(n);
    *finished = r.finished && start + n == r.published;
    lock.unlock();
    r.cv.notify_all();  // the writer may wait for room
    return ORCD_OK;
}

extern "C" void orcd_engine_cancel(orcd_engine *e) {
    {
        std::lock_guard<std::mutex> lock(e->ring.mu);
        e->cancel = true;
    }
    e->ring.cv.notify_all();
}
