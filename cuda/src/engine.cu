// The engine's C API: create, load, inspect, teacher-forced logits, and the sampler on host
// logits for tests. The decode loop is in decode.cu.
#include <cstring>
#include <new>
#include "context.cuh"
#include "engine.cuh"
#include "loader.cuh"

using namespace orcd;

namespace {

orcd_status validate(const orcd_model_config &c) {
    bool experts = c.arch != ORCD_ARCH_GPT_OSS ||
                   (c.expert_count > 0 && c.expert_used_count > 0 &&
                    c.expert_used_count <= c.expert_count && c.expert_feed_forward_length > 0 &&
                    c.sliding_window >= 0);
    bool ok = c.arch >= ORCD_ARCH_LLAMA && c.arch <= ORCD_ARCH_GPT_OSS && experts && c.block_count > 0 &&
              c.embedding_length > 0 && c.feed_forward_length > 0 && c.head_count > 0 &&
              c.head_count_kv > 0 && c.head_count % c.head_count_kv == 0 && c.head_dim > 0 &&
              c.head_dim <= kAttentionChunk && c.head_dim % 8 == 0 && c.vocab_size > 0 && c.ctx > 0 &&
              c.rope_dimension_count > 0 && c.rope_dimension_count % 2 == 0 &&
              c.rope_dimension_count <= c.head_dim;
    if (ok) return ORCD_OK;
    return fail(ORCD_ERR_INVALID, "unsupported model config: arch %d, %d heads (%d kv) of %d, "
                "rope dims %d, ctx %d, %d of %d experts (head_dim must be a multiple of 8, at "
                "most %d)", c.arch, c.head_count, c.head_count_kv, c.head_dim,
                c.rope_dimension_count, c.ctx, c.expert_used_count, c.expert_count,
                kAttentionChunk);
}

// The options (options.cuh) a prefill's matmuls take: clustered split sums, splits in steps,
// wide tiles, the dense F16 product and its wgmma.
orcd_status matmul_switches(const Options &o, MatmulScratch *m) {
    m->clusters = o.clusters;
    m->steps = o.split_steps ? -1 : 0;
    m->wide = o.wide_tiles ? -1 : 0;
    m->dense = o.dense_tiles ? -1 : 0;
    return dense_wgmma(o.wgmma, &m->wgmma);
}

// Rows of a prefill pass: a chunk (Options::prefill_chunk), or the whole context where it is
// shorter.
int prefill_rows(const orcd_model_config &c, const Options &o) {
    return c.ctx < o.prefill_chunk ? c.ctx : o.prefill_chunk;
}

orcd_status load_model(orcd_engine *e, const orcd_model_config &c, const orcd_tensor *t, int n,
                       size_t chunk, orcd_progress_fn progress, void *user) {
    Model &m = e->model;
    m.cfg = c;
    TensorMap tensors;
    ORCD_TRY(upload_tensors(e->alloc, t, n, e->options.joint ? joint_tensors(c) : JointGroups{},
                            chunk, progress, user, e->stream, &tensors));
    ORCD_TRY(bind_weights(c, tensors, e->options.joint, &m.w));
    m.decode = decode_path_for(e->options, c, m.w);
    m.matvec = e->options.matvec;
    int major = 0;
    ORCD_TRY(compute_major(&major));  // of e->device, current since orcd_engine_load
    m.overlap = e->options.overlap && major >= 9;
    m.fused = e->options.fused;
    ORCD_TRY(kv_cache_alloc(e->alloc, c, &m.kv));
    ORCD_TRY(rope_table_alloc(e->alloc, c, &m.rope, e->stream));
    m.cfg.rope_factors = nullptr;  // the caller's memory, read only during load
    ORCD_TRY(activations_alloc(e->alloc, c, 1, 1, e->stream, &e->step));
    ORCD_TRY(activations_alloc(e->alloc, c, prefill_rows(c, e->options), 1, e->stream, &e->prefill));
    ORCD_TRY(matmul_switches(e->options, &e->prefill.matmul));
    // A prefill's kernels launched one by one overlap the one before (overlap.cuh); a graph's
    // do not (decode.cu's prefill_chunk).
    e->prefill.matmul.overlap = m.overlap;
    ORCD_TRY(sampler_init(e->sampler, e->alloc, c.vocab_size, e->stream));
    ORCD_TRY(decode_state_alloc(e->alloc, c, &e->decode));
    if (m.decode == DecodePath::persistent) {
        size_t weight_bytes = 0;
        for (int i = 0; i < n; ++i) weight_bytes += t[i].nbytes;
        ORCD_TRY(persistent_plan_build(e->alloc, m, e->step, &e->decode.state->pos,
                                       e->options.persistent_blocks_per_sm, weight_bytes,
                                       e->stream));
    }
    ORCD_TRY(job_extras_alloc(e->alloc, c, &e->extras));
    return check(cudaStreamSynchronize(e->stream), "load synchronize");
}

orcd_status engine_init(orcd_engine *e) {
    ORCD_CUDA(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    for (cudaEvent_t &ready : e->decode.token_ready)
        ORCD_CUDA(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    ORCD_CUDA(cudaHostAlloc(&e->ring.slots, TokenRing::kCapacity * sizeof(int32_t),
                            cudaHostAllocDefault));
    ORCD_CUDA(cudaHostAlloc(&e->ring.records, TokenRing::kCapacity * sizeof(orcd_logprob),
                            cudaHostAllocDefault));
    return check(cudaHostAlloc(&e->decode.state_host, sizeof(StepState), cudaHostAllocDefault),
                 "cudaHostAlloc step state");
}

orcd_status check_ids(const int32_t *ids, int n, int vocab) {
    for (int i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= vocab)
            return fail(ORCD_ERR_INVALID, "token id %d at %d is outside the vocabulary of %d",
                        ids[i], i, vocab);
    return ORCD_OK;
}

orcd_status forward_logits(orcd_engine *e, const int32_t *ids, int n, float *logits) {
    const orcd_model_config &c = e->model.cfg;
    Activations a;
    ORCD_TRY(activations_alloc(e->alloc, c, n, n, e->stream, &a));
    ORCD_TRY(matmul_switches(e->options, &a.matmul));
    const int zero = 0;
    ORCD_CUDA(cudaMemcpyAsync(a.pos0, &zero, sizeof zero, cudaMemcpyHostToDevice, e->stream));
    ORCD_CUDA(cudaMemcpyAsync(a.ids, ids, n * sizeof(int32_t), cudaMemcpyHostToDevice, e->stream));
    ORCD_TRY(forward(e->model, a, a.ids, n, a.pos0, true, e->stream));
    ORCD_CUDA(cudaMemcpyAsync(logits, a.logits, size_t(n) * c.vocab_size * sizeof(float),
                              cudaMemcpyDeviceToHost, e->stream));
    return check(cudaStreamSynchronize(e->stream), "forward synchronize");
}

}  // namespace

extern "C" orcd_status orcd_engine_create(int device, orcd_engine **out) {
    *out = nullptr;
    ORCD_TRY(context_init(device));
    orcd_engine *e = new (std::nothrow) orcd_engine;
    if (!e) return fail(ORCD_ERR_OOM, "out of host memory creating the engine");
    e->device = device;
    orcd_status st = options_from_env(&e->options);
    if (st == ORCD_OK) st = engine_init(e);
    if (st != ORCD_OK) {
        orcd_engine_destroy(e);
        return st;
    }
    *out = e;
    return ORCD_OK;
}

extern "C" void orcd_engine_destroy(orcd_engine *e) {
    if (!e) return;
    if (e->job.thread.joinable()) {  // the running job (if any) stops at its next step
        orcd_engine_cancel(e);
        {
            std::lock_guard<std::mutex> lock(e->job.mu);
            e->job.quit = true;
        }
        e->job.cv.notify_all();
        e->job.thread.join();
    }
    cudaSetDevice(e->device);
    if (e->stream) cudaStreamSynchronize(e->stream);
    for (auto &by_penalty : e->decode.graph)
        for (auto &by_mask : by_penalty)
            for (cudaGraphExec_t g : by_mask)
                if (g) cudaGraphExecDestroy(g);
    for (auto &by_split : e->decode.prefill)
        for (cudaGraphExec_t g : by_split)
            if (g) cudaGraphExecDestroy(g);
    for (cudaEvent_t ready : e->decode.token_ready)
        if (ready) cudaEventDestroy(ready);
    if (e->ring.slots) cudaFreeHost(e->ring.slots);
    if (e->ring.records) cudaFreeHost(e->ring.records);
    if (e->decode.state_host) cudaFreeHost(e->decode.state_host);
    e->alloc.release_since(0);
    if (e->stream) cudaStreamDestroy(e->stream);
    delete e;
}

extern "C" size_t orcd_engine_vram_required(const orcd_model_config *c, size_t weight_bytes) {
    int rows = prefill_rows(*c, options_or_defaults());
    return weight_bytes + kv_cache_bytes(*c) + activation_bytes(*c, 1, 1) +
           activation_bytes(*c, rows, 1) + sampler_bytes(c->vocab_size) +
           decode_state_bytes(*c) + persistent_plan_bytes(*c, weight_bytes) + job_extras_bytes(*c) +
           size_t(c->rope_dimension_count) * sizeof(double);
}

extern "C" orcd_status orcd_engine_load(orcd_engine *e, const orcd_model_config *cfg,
                                        const orcd_tensor *tensors, int n_tensors,
                                        size_t chunk_bytes, orcd_progress_fn progress,
                                        void *user) {
    if (e->loaded) return fail(ORCD_ERR_INVALID, "the engine already holds a model");
    ORCD_TRY(validate(*cfg));
    ORCD_TRY(use_device(e->device));
    orcd_status st = load_model(e, *cfg, tensors, n_tensors, chunk_bytes, progress, user);
    if (st != ORCD_OK) {
        cudaStreamSynchronize(e->stream);
        e->alloc.release_since(0);
        e->model = Model{};
        return st;
    }
    e->loaded = true;
    return ORCD_OK;
}

extern "C" void orcd_engine_stats_get(const orcd_engine *e, orcd_engine_stats *out) {
    out->vram_bytes_used = e->alloc.bytes_used();
    out->allocations_made = e->alloc.allocations_made();
    out->loaded = e->loaded;
}

extern "C" orcd_status orcd_engine_check_residency(orcd_engine *e, int *resident) {
    ORCD_TRY(use_device(e->device));
    bool ok = false;
    ORCD_TRY(e->alloc.check_residency(&ok));
    e->resident = ok;
    *resident = ok;
    return ORCD_OK;
}

extern "C" int orcd_engine_resident(const orcd_engine *e) { return e->resident; }

extern "C" orcd_status orcd_engine_forward_logits(orcd_engine *e, const int32_t *ids, int n,
                                                  float *logits) {
    if (!e->loaded) return fail(ORCD_ERR_INVALID, "no model loaded");
    if (n < 1 || n > e->model.cfg.ctx)
        return fail(ORCD_ERR_INVALID, "%d tokens for a context of %d", n, e->model.cfg.ctx);
    ORCD_TRY(check_ids(ids, n, e->model.cfg.vocab_size));
    ORCD_TRY(use_device(e->device));
    size_t mark = e->alloc.mark();
    orcd_status st = forward_logits(e, ids, n, logits);
    cudaStreamSynchronize(e->stream);
    e->alloc.release_since(mark);
    return st;
}

namespace {

orcd_status sample_once(Allocator &alloc, cudaStream_t stream, const float *logits, int vocab,
                        const orcd_sampling &p, uint64_t step, const int32_t *history,
                        int n_history, const uint32_t *mask, int32_t *out) {
    Sampler s;
    ORCD_TRY(sampler_init(s, alloc, vocab, stream));
    float *dev_logits;
    SamplingArgs *args;
    StepState *state;
    int32_t *dev_history;
    int cap = n_history + 1;
    ORCD_TRY(alloc.alloc(&dev_logits, vocab, "logits"));
    ORCD_TRY(alloc.alloc(&args, 1, "sampling args"));
    ORCD_TRY(alloc.alloc(&state, 1, "step state"));
    ORCD_TRY(alloc.alloc(&dev_history, cap, "history"));
    uint32_t *dev_mask = nullptr;
    if (mask) {
        ORCD_TRY(alloc.alloc(&dev_mask, (vocab + 31) / 32, "mask"));
        ORCD_CUDA(cudaMemcpyAsync(dev_mask, mask, (vocab + 31) / 32 * sizeof(uint32_t),
                                  cudaMemcpyHostToDevice, stream));
    }
    SamplingArgs a = sampling_args(p);
    StepState st{0, 0, int32_t(step), n_history};
    ORCD_CUDA(cudaMemcpyAsync(dev_logits, logits, vocab * sizeof(float), cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(args, &a, sizeof a, cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(state, &st, sizeof st, cudaMemcpyHostToDevice, stream));
    if (n_history)
        ORCD_CUDA(cudaMemcpyAsync(dev_history, history, n_history * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream));
    ORCD_TRY(sample(s, dev_logits, args, state, dev_history, cap, sampler_path(p), dev_mask, stream));
    ORCD_CUDA(cudaMemcpyAsync(&st, state, sizeof st, cudaMemcpyDeviceToHost, stream));
    ORCD_CUDA(cudaStreamSynchronize(stream));
    *out = st.token;
    return ORCD_OK;
}

}  // namespace

extern "C" orcd_status orcd_sample_host_logits(int device, const float *logits, int vocab,
                                               const orcd_sampling *params, uint64_t step,
                                               const int32_t *history, int n_history,
                                               const uint32_t *mask, int32_t *out) {
    if (vocab < 1 || n_history < 0 || step > 0x7fffffffu)
        return fail(ORCD_ERR_INVALID, "sample: vocab %d, history %d, step %llu", vocab,
                    n_history, (unsigned long long)step);
    ORCD_TRY(context_init(device));
    cudaStream_t stream;
    ORCD_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    orcd_status st;
    {
        Allocator alloc;  // frees everything at the end of this scope
        st = sample_once(alloc, stream, logits, vocab, *params, step, history, n_history, mask, out);
        cudaStreamSynchronize(stream);
    }
    cudaStreamDestroy(stream);
    return st;
}

namespace {

orcd_status logprobs_once(Allocator &alloc, cudaStream_t stream, const float *logits, int rows,
                          int vocab, const int32_t *ids, int top_n, orcd_logprob *out) {
    LogprobScratch s;
    float *dev_logits;
    int32_t *dev_ids;
    ORCD_TRY(logprob_scratch_alloc(alloc, vocab, rows, &s));
    ORCD_TRY(alloc.alloc(&dev_logits, size_t(rows) * vocab, "logits"));
    ORCD_TRY(alloc.alloc(&dev_ids, rows, "ids"));
    ORCD_CUDA(cudaMemcpyAsync(dev_logits, logits, size_t(rows) * vocab * sizeof(float),
                              cudaMemcpyHostToDevice, stream));
    ORCD_CUDA(cudaMemcpyAsync(dev_ids, ids, rows * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    ORCD_TRY(token_logprobs(s, dev_logits, rows, dev_ids, top_n, stream));
    ORCD_CUDA(cudaMemcpyAsync(out, s.records, rows * sizeof(orcd_logprob), cudaMemcpyDeviceToHost,
                              stream));
    return check(cudaStreamSynchronize(stream), "logprobs synchronize");
}

}  // namespace

extern "C" orcd_status orcd_test_logprobs(int device, const float *logits, int rows, int vocab,
                                          const int32_t *ids, int top_n, orcd_logprob *out) {
    if (rows < 1 || vocab < 1)
        return fail(ORCD_ERR_INVALID, "logprobs of %d rows of %d logits", rows, vocab);
    for (int r = 0; r < rows; ++r)
        if (ids[r] < 0 || ids[r] >= vocab)
            return fail(ORCD_ERR_INVALID, "id %d of row %d is outside the vocabulary of %d", ids[r], r, vocab);
    ORCD_TRY(context_init(device));
    cudaStream_t stream;
    ORCD_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    orcd_status st;
    {
        Allocator alloc;
        st = logprobs_once(alloc, stream, logits, rows, vocab, ids, top_n, out);
        cudaStreamSynchronize(stream);
    }
    cudaStreamDestroy(stream);
    return st;
}
