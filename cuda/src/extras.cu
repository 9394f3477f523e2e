// What a job may ask beyond ids: logprobs of its tokens and of its prompt (logprobs.cu's
// kernels, launched only when asked) and a grammar's mask of the allowed ids, handed over by
// the host one step at a time. The decode loop (decode.cu) calls these at its fixed points.
#include <algorithm>
#include "context.cuh"
#include "engine.cuh"

using namespace orcd;

namespace orcd {

static int mask_words(const orcd_model_config &c) { return (c.vocab_size + 31) / 32; }

size_t job_extras_bytes(const orcd_model_config &c) {
    return logprob_scratch_bytes(c.vocab_size, 1) + mask_words(c) * sizeof(uint32_t);
}

orcd_status job_extras_alloc(Allocator &alloc, const orcd_model_config &c, JobExtras *x) {
    x->mask_host.assign(mask_words(c), 0u);
    ORCD_TRY(alloc.alloc(&x->mask, mask_words(c), "grammar mask"));
    return logprob_scratch_alloc(alloc, c.vocab_size, 1, &x->step_logprobs);
}

void extras_begin(orcd_engine *e, const orcd_sampling &p, int n_prompt) {
    JobExtras &x = e->extras;
    x.top_logprobs = p.top_logprobs;
    x.prompt_logprobs = p.prompt_logprobs != 0;
    x.constrained = p.constrained != 0;
    x.prompt_records.assign(x.prompt_logprobs ? n_prompt - 1 : 0, orcd_logprob{});
    x.prompt_logprobs_scratch = LogprobScratch{};
}

orcd_status scoring_alloc(orcd_engine *e, int rows, float **logits) {
    int vocab = e->model.cfg.vocab_size;
    ORCD_TRY(e->alloc.alloc(logits, size_t(rows) * vocab, "prompt logits"));
    return logprob_scratch_alloc(e->alloc, vocab, rows, &e->extras.prompt_logprobs_scratch);
}

orcd_status score_prompt(orcd_engine *e, const float *logits, int start, int n) {
    JobExtras &x = e->extras;
    int rows = std::min(n, int(x.prompt_records.size()) - start);
    if (!x.prompt_logprobs || rows < 1) return ORCD_OK;
    const LogprobScratch &s = x.prompt_logprobs_scratch;
    ORCD_TRY(token_logprobs(s, logits, rows, e->decode.history + start + 1,
                            std::max(x.top_logprobs, 0), e->stream));
    // into pageable memory: the call returns once the records are there
    return check(cudaMemcpyAsync(x.prompt_records.data() + start, s.records,
                                 rows * sizeof(orcd_logprob), cudaMemcpyDeviceToHost, e->stream),
                 "copy prompt logprobs");
}

orcd_status score_token(orcd_engine *e, const float *logits) {
    const JobExtras &x = e->extras;
    if (x.top_logprobs < 0) return ORCD_OK;
    return token_logprobs(x.step_logprobs, logits, 1, &e->decode.state->token, x.top_logprobs,
                          e->stream);
}

orcd_status await_mask(orcd_engine *e, int step) {
    JobExtras &x = e->extras;
    if (!x.constrained) return ORCD_OK;
    TokenRing &r = e->ring;
    std::unique_lock<std::mutex> lock(r.mu);
    r.cv.wait(lock, [&] { return x.mask_step == step || e->cancel; });
    if (e->cancel) return fail(ORCD_ERR_CANCELLED, "generation cancelled");
    // From pageable memory: staged before the call returns, so the host may write the next one.
    return check(cudaMemcpyAsync(x.mask, x.mask_host.data(), x.mask_host.size() * sizeof(uint32_t),
                                 cudaMemcpyHostToDevice, e->stream), "upload grammar mask");
}

}  // namespace orcd

extern "C" orcd_status orcd_engine_put_mask(orcd_engine *e, int step, const uint32_t *mask,
                                            int n_words) {
    JobExtras &x = e->extras;
    if (n_words != int(x.mask_host.size()) || step < 0)
        return fail(ORCD_ERR_INVALID, "a mask of %d words for step %d; the vocabulary needs %d",
                    n_words, step, int(x.mask_host.size()));
    {
        std::lock_guard<std::mutex> lock(e->ring.mu);
        std::copy(mask, mask + n_words, x.mask_host.begin());
        x.mask_step = step;
    }
    e->ring.cv.notify_all();
    return ORCD_OK;
}

extern "C" orcd_status orcd_engine_prompt_logprobs(orcd_engine *e, orcd_logprob *out, int n) {
    const JobExtras &x = e->extras;
    if (n < 0 || n > int(x.prompt_records.size()))
        return fail(ORCD_ERR_INVALID, "%d prompt records asked, the job has %d", n,
                    int(x.prompt_records.size()));
    std::copy(x.prompt_records.begin(), x.prompt_records.begin() + n, out);
    return ORCD_OK;
}
