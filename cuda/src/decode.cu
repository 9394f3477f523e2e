// The decode loop: prefill the prompt (past the prefix the KV cache still holds from the
// previous job), then one step per token (forward of the last id, then the sampler), each id
// published to the token ring as soon as it is known. The step is captured once in a CUDA
// graph and replayed; ORCD_CUDA_GRAPH=0 launches it kernel by kernel (options.cuh).
#include <algorithm>
#include <chrono>
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

// Forward of state->token at state->pos, then the sampler writes the next id to state->token;
// `masked`: only the ids of the grammar mask may be drawn.
orcd_status decode_one_token(orcd_engine *e, bool greedy, bool masked) {
    const DecodeState &d = e->decode;
    ORCD_TRY(forward(e->model, e->step, &d.state->token, 1, &d.state->pos, false, e->stream));
    return sample(e->sampler, e->step.logits, d.args, d.state, d.history, d.history_cap, greedy,
                  masked ? e->extras.mask : nullptr, e->stream);
}

orcd_status capture(orcd_engine *e, bool greedy, bool masked, cudaGraphExec_t *exec) {
    cudaGraph_t graph = nullptr;
    ORCD_CUDA(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
    orcd_status st = decode_one_token(e, greedy, masked);
    cudaError_t ended = cudaStreamEndCapture(e->stream, &graph);
    if (st == ORCD_OK) st = check(ended, "cudaStreamEndCapture");
    if (st == ORCD_OK) st = check(cudaGraphInstantiate(exec, graph, 0), "cudaGraphInstantiate");
    if (graph) cudaGraphDestroy(graph);
    return st;
}

orcd_status run_step(orcd_engine *e, bool greedy) {
    bool masked = e->extras.constrained;
    if (!e->options.graphs) return decode_one_token(e, greedy, masked);
    cudaGraphExec_t &exec = e->decode.graph[greedy][masked];
    if (!exec) ORCD_TRY(capture(e, greedy, masked, &exec));
    return check(cudaGraphLaunch(exec, e->stream), "cudaGraphLaunch decode step");
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
        ORCD_TRY(forward(e->model, a, a.ids, n, a.pos0, every_row, e->stream));
        ORCD_TRY(score_prompt(e, a.logits, start, n));
        *last = a.logits + (every_row ? size_t(n - 1) * e->model.cfg.vocab_size : 0);
    }
    return ORCD_OK;
}

orcd_status set_step(orcd_engine *e, StepState s) {
    *e->decode.state_host = s;  // pinned; rewritten only after the copy's step has finished
    return check(cudaMemcpyAsync(e->decode.state, e->decode.state_host, sizeof s,
                                 cudaMemcpyHostToDevice, e->stream), "copy step state");
}

// Copies the sampled id into the next ring slot and publishes it.
orcd_status publish(orcd_engine *e, int32_t *id) {
    TokenRing &r = e->ring;
    {
        std::unique_lock<std::mutex> lock(r.mu);
        r.cv.wait(lock, [&] { return r.published - r.consumed < TokenRing::kCapacity || e->cancel; });
    }
    if (e->cancel) return fail(ORCD_ERR_CANCELLED, "generation cancelled");
    int32_t *slot = &r.slots[r.published % TokenRing::kCapacity];
    ORCD_CUDA(cudaMemcpyAsync(slot, &e->decode.state->token, sizeof *slot,
                              cudaMemcpyDeviceToHost, e->stream));
    if (e->extras.top_logprobs >= 0)
        ORCD_CUDA(cudaMemcpyAsync(&r.records[r.published % TokenRing::kCapacity],
                                  e->extras.step_logprobs.records, sizeof(orcd_logprob),
                                  cudaMemcpyDeviceToHost, e->stream));
    ORCD_CUDA(cudaEventRecord(e->decode.token_ready, e->stream));
    ORCD_CUDA(cudaEventSynchronize(e->decode.token_ready));
    *id = *slot;
    {
        std::lock_guard<std::mutex> lock(r.mu);
        ++r.published;
    }
    r.cv.notify_all();
    return ORCD_OK;
}

orcd_status decode_loop(orcd_engine *e, const int32_t *prompt, int n_prompt, int n_cached,
                        const orcd_sampling &params, int max_tokens, const int32_t *stop_ids,
                        int n_stop) {
    const DecodeState &d = e->decode;
    bool greedy = params.temperature == 0.0f;
    SamplingArgs args = sampling_args(params);
    ORCD_CUDA(cudaMemcpyAsync(d.args, &args, sizeof args, cudaMemcpyHostToDevice, e->stream));
    ORCD_CUDA(cudaMemcpyAsync(d.history, prompt, n_prompt * sizeof(int32_t),
                              cudaMemcpyHostToDevice, e->stream));
    const float *logits = nullptr;
    ORCD_TRY(prefill(e, n_prompt, n_cached, &logits));
    if (max_tokens == 0) return ORCD_OK;  // the prompt scored, nothing to generate
    ORCD_TRY(set_step(e, {0, 0, 0, n_prompt}));
    ORCD_TRY(await_mask(e, 0));
    ORCD_TRY(sample(e->sampler, logits, d.args, d.state, d.history, d.history_cap, greedy,
                    e->extras.constrained ? e->extras.mask : nullptr, e->stream));
    ORCD_TRY(score_token(e, logits));
    int limit = std::min(max_tokens, e->model.cfg.ctx - n_prompt + 1);
    for (int step = 0;; ++step) {
        int32_t id;
        ORCD_TRY(publish(e, &id));
        if (std::find(stop_ids, stop_ids + n_stop, id) != stop_ids + n_stop || step + 1 >= limit)
            return ORCD_OK;
        if (e->cancel) return fail(ORCD_ERR_CANCELLED, "generation cancelled");
        ORCD_TRY(set_step(e, {id, n_prompt + step, step + 1, n_prompt + step + 1}));
        ORCD_TRY(await_mask(e, step + 1));
        ORCD_TRY(run_step(e, greedy));
        ORCD_TRY(score_token(e, e->step.logits));
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

void finish(TokenRing &r) {
    {
        std::lock_guard<std::mutex> lock(r.mu);
        r.finished = true;
    }
    r.cv.notify_all();
}

}  // namespace

extern "C" void orcd_engine_begin_job(orcd_engine *e) {
    std::lock_guard<std::mutex> lock(e->ring.mu);
    e->ring.published = e->ring.consumed = 0;
    e->ring.finished = false;
    e->cancel = false;
    e->extras.mask_step = -1;
}

extern "C" orcd_status orcd_engine_generate(orcd_engine *e, const int32_t *prompt, int n_prompt,
                                            int n_cached, const orcd_sampling *params,
                                            int max_tokens, const int32_t *stop_ids, int n_stop) {
    orcd_status st = check_job(e, prompt, n_prompt, n_cached);
    if (st == ORCD_OK) st = use_device(e->device);
    if (st == ORCD_OK) extras_begin(e, *params, n_prompt);
    if (st == ORCD_OK && (max_tokens > 0 || params->prompt_logprobs)) {
        size_t mark = e->alloc.mark();
        st = decode_loop(e, prompt, n_prompt, n_cached, *params, max_tokens, stop_ids, n_stop);
        cudaStreamSynchronize(e->stream);  // nothing in flight uses what is freed next
        e->alloc.release_since(mark);       // a scored prompt's buffers, complete or partial
    }
    finish(e->ring);
    return st;
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
