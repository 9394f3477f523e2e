/* The C API of the orcd CUDA library, seen by orcd/_cuda.pyx.
 * Conventions: every call returns an orcd_status; on failure orcd_last_error() holds a
 * human sentence. Handles are opaque. No C++ exception crosses this boundary. */
#ifndef ORCD_CUDA_H
#define ORCD_CUDA_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ORCD_OK = 0,
    ORCD_ERR_CUDA = 1,       /* a CUDA call or kernel failed        -> CUDA_ERROR */
    ORCD_ERR_OOM = 2,        /* a device allocation failed          -> VRAM_OOM */
    ORCD_ERR_INVALID = 3,    /* bad argument from the caller        -> INTERNAL */
    ORCD_ERR_NO_DEVICE = 4,  /* no GPU, no driver, or bad device id -> CUDA_ERROR */
    ORCD_ERR_CANCELLED = 5,  /* a job stopped on its cancel flag    -> CANCELLED */
} orcd_status;

const char *orcd_last_error(void);

/* Context: device discovery. Safe without a driver: device_count is then 0. */
typedef struct {
    char name[256];
    int sm;                     /* major*10 + minor, e.g. 90 */
    size_t total_bytes;
    size_t free_bytes;
    int multiprocessors;
} orcd_device_info;

int orcd_device_count(void);
int orcd_runtime_version(void);
orcd_status orcd_device_info_get(int device, orcd_device_info *out);

/* Kernels on host arrays, for tests and benchmarks (cuda/src/kernel_api.cu). */

/* ggml's block of a weight format (ggml type id): values per block and bytes per block. */
orcd_status orcd_block_layout(int ggml_type, int *block_size, int *type_size);

/* One kernel on host arrays, on the current device: copy in, run, copy back, free.
 * w holds rows x cols values as GGUF stores them (w_bytes checked against the shape).
 * matvec: y[rows] = W x; matmul: y[n, rows] = x[n, cols] W^T; embed: out[n, cols] = W[ids].
 * matmul's split: -1 gives each column split a block where the engine would (a launch that
 * leaves the GPU idle), 0 never, 1 always, 2 always with the splits' sums added through global
 * memory (sm_80's way; 1 uses a cluster on sm_90): the results are the same bits (ops.cuh). */
orcd_status orcd_test_matvec(int ggml_type, const void *w, size_t w_bytes, const float *x,
                             float *y, int rows, int cols);
orcd_status orcd_test_matmul(int ggml_type, const void *w, size_t w_bytes, const float *x,
                             float *y, int rows, int cols, int n, int split);
orcd_status orcd_test_embed(int ggml_type, const void *w, size_t w_bytes, const int32_t *ids,
                            float *out, int rows, int cols, int n);

/* Mean seconds per call of matvec (n = 0) or matmul (n tokens) over `iters` calls timed with
 * CUDA events on device-resident data; the calls cycle through copies of W totalling at least
 * 256 MiB, so that weights come from device memory as in a real forward pass, not from L2;
 * matmul splits its columns where the engine would. */
orcd_status orcd_bench_weights(int ggml_type, const void *w, size_t w_bytes, int rows,
                               int cols, int n, int iters, double *seconds);

/* Device copy bandwidth in bytes/s: 2 * bytes (read + write) / time of a device-to-device
 * cudaMemcpy of `bytes`, mean over `iters` copies after a warm-up. */
orcd_status orcd_bench_copy(size_t bytes, int iters, double *bytes_per_second);

/* Attention (cuda/src/attention.cu, attention_prefill.cu) on host arrays: k and v
 * [n_keys][kv_heads * head_dim] are stored at positions 0..n_keys-1 of an FP16 cache of ctx
 * n_keys (n_keys >= pos0 + n); q and out are [n][heads * head_dim], query i at position
 * pos0 + i. window: 0 or the sliding window; sinks: F32 [heads] or NULL. decode_path 0:
 * attention_prefill (any n, with the key-split scratch an engine has); 1: attention_decode,
 * 2: attention_decode_one_launch (n == 1). The kernels run twice on the same buffers, out
 * cleared to NaN between: state the first run leaves behind (decode counters) shows. */
orcd_status orcd_test_attention(const float *q, int n, const float *k, const float *v,
                                int n_keys, int heads, int kv_heads, int head_dim, int window,
                                const float *sinks, int pos0, int decode_path, float *out);

/* Mean seconds per attention_prefill call of n queries at positions pos0.. over an FP16 cache
 * of pos0 + n keys (constant finite data), over `iters` calls timed with CUDA events, with the
 * key-split scratch an engine has (attention_prefill_partial_floats). */
orcd_status orcd_bench_attention(int heads, int kv_heads, int head_dim, int n, int pos0,
                                 int iters, double *seconds);

/* One mixture-of-experts layer (cuda/src/moe.cu) in host memory. Router: router_w F32
 * [experts][d], router_b [experts]. gate and up: `experts` matrices of ff rows x d columns as
 * GGUF stores them in ggml type gate_up_type, gate_up_bytes each; biases F32 [experts][ff].
 * down: `experts` matrices of d rows x ff columns in down_type; bias F32 [experts][d]. */
typedef struct {
    int d, ff, experts, used;
    const float *router_w, *router_b;
    int gate_up_type, down_type;
    const void *gate, *up, *down;
    size_t gate_up_bytes, down_bytes;
    const float *gate_b, *up_b, *down_b;
} orcd_moe_layer;

/* x[n][d] += the layer's experts' weighted sum for xn[n][d] (n == 1 takes the decode path).
 * The scratch starts as all-ones bytes (NaN floats): a read of what no kernel wrote shows. */
orcd_status orcd_test_moe(const orcd_moe_layer *layer, const float *xn, float *x, int n);

/* Mean seconds per moe call of n tokens over `iters` calls timed with CUDA events, the layer
 * resident on the device; call i takes rows (i mod (tokens / n)) * n.. of xn[tokens][d], so
 * that successive calls choose other experts (tokens: a multiple of n). */
orcd_status orcd_bench_moe(const orcd_moe_layer *layer, const float *xn, int tokens, int n,
                           int iters, double *seconds);

/* The engine: context, allocator, loader, forward pass, decode loop. */

/* One model on one device: its weights, KV cache, activations, sampler and decode loop.
 * Every device allocation goes through the engine's accounting allocator. The test-only
 * fault hook ORCD_FAULT=alloc:N fails the N-th allocation counted from the engine's
 * creation (load allocations included) as VRAM_OOM, once. */
typedef struct orcd_engine orcd_engine;

/* Prompt tokens per prefill pass by default: the rows of the prefill activations
 * (orcd._cuda.PREFILL_CHUNK, the CPU engine's chunk too); the environment's ORCD_PREFILL_CHUNK
 * sets the CUDA engine's (options.cuh). */
#define ORCD_PREFILL_CHUNK 2048

enum { ORCD_ARCH_LLAMA = 0, ORCD_ARCH_QWEN2 = 1, ORCD_ARCH_PHI3 = 2, ORCD_ARCH_GPT_OSS = 3 };

typedef struct {
    int arch;                   /* ORCD_ARCH_* */
    int block_count;
    int embedding_length;
    int feed_forward_length;
    int head_count;
    int head_count_kv;
    int head_dim;               /* key_length == value_length: a multiple of 8, at most 128 */
    int vocab_size;
    int ctx;                    /* positions of the KV cache */
    int rope_dimension_count;
    int rope_neox;              /* pairs (i, i + d/2) instead of (2i, 2i + 1) */
    float rms_eps;
    float rope_freq_base;
    /* Rope scaling (orcd.models.rope): rope_dimension_count / 2 divisors of the frequencies
     * (phi3's longrope, gpt-oss's YaRN), host memory read during load only, or NULL; and the
     * scale of cos and sin (longrope's attention factor, YaRN's mscale), 1 without. */
    const double *rope_factors;
    float rope_scale;
    /* gpt-oss: experts per layer, chosen per token, rows of an expert's gate and up; the
     * sliding window of the even layers (0: none). 0 for the other architectures. */
    int expert_count;
    int expert_used_count;
    int expert_feed_forward_length;
    int sliding_window;
} orcd_model_config;

/* A tensor as the GGUF file holds it, in host memory (the mmap); ne0 is the row length. */
typedef struct {
    const char *name;
    int ggml_type;
    const void *host;
    size_t nbytes;
    int64_t ne0;
    int64_t ne1;
    int64_t ne2;                /* 1 for a matrix; the experts of a gpt-oss ffn_*_exps */
} orcd_tensor;

typedef struct {
    float temperature;
    float top_p;
    float min_p;
    float repetition_penalty;
    int top_k;
    uint64_t seed;
    /* Beyond sampling (cuda/src/logprobs.cu, the grammar mask); 0 / -1 cost nothing. */
    int top_logprobs;           /* -1: no logprobs; 0..ORCD_MAX_TOP_LOGPROBS alternatives */
    int prompt_logprobs;        /* 1: also score every prompt token after the first */
    int constrained;            /* 1: each token waits for orcd_engine_put_mask's bitmask */
} orcd_sampling;

/* A token's log-probability under the model: log-softmax of the raw logits, before the
 * repetition penalty, temperature, truncation and grammar mask; and the most likely ids. */
#define ORCD_MAX_TOP_LOGPROBS 20
typedef struct {
    int32_t token;
    float logprob;
    int32_t top_ids[ORCD_MAX_TOP_LOGPROBS];      /* the first top_logprobs are set */
    float top_logprobs[ORCD_MAX_TOP_LOGPROBS];
} orcd_logprob;

typedef void (*orcd_progress_fn)(int percent, void *user);

typedef struct {
    size_t vram_bytes_used;     /* bytes held through the allocator */
    long allocations_made;      /* counted as ORCD_FAULT counts them */
    int loaded;
} orcd_engine_stats;

/* Selects and validates the device, sets the device malloc heap to 0, creates the stream. */
orcd_status orcd_engine_create(int device, orcd_engine **out);
void orcd_engine_destroy(orcd_engine *engine);

/* Device bytes a load of this config with weight_bytes of tensors will hold at most:
 * weights + FP16 KV cache for cfg->ctx + activations (decode and one prefill chunk) + sampler. */
size_t orcd_engine_vram_required(const orcd_model_config *cfg, size_t weight_bytes);

/* Copies every tensor to VRAM in chunks of chunk_bytes through two pinned staging buffers,
 * then allocates the KV cache, activations (a decode step's and a prefill chunk's) and
 * sampler. progress (may be NULL) receives 0, 25, 50, 75, 100. On failure everything
 * allocated is freed again. */
orcd_status orcd_engine_load(orcd_engine *engine, const orcd_model_config *cfg,
                             const orcd_tensor *tensors, int n_tensors, size_t chunk_bytes,
                             orcd_progress_fn progress, void *user);

void orcd_engine_stats_get(const orcd_engine *engine, orcd_engine_stats *out);
orcd_status orcd_engine_check_residency(orcd_engine *engine, int *resident);
/* The last residency check's answer: orcd_engine_check_residency's, or a job's (each job checks
 * every allocation while the GPU runs its prefill, and fails before its first id if one is not
 * device memory). 1 before any check. */
int orcd_engine_resident(const orcd_engine *engine);

/* Teacher forcing (tests): logits[n, vocab] of ids at positions 0..n-1, from an empty cache. */
orcd_status orcd_engine_forward_logits(orcd_engine *engine, const int32_t *ids, int n,
                                       float *logits);

/* Where the last job's host time went before its first id (`orcd serve --trace`), each in ns
 * of CLOCK_MONOTONIC (Python's time.perf_counter_ns), 0 until reached: entered, when the
 * decode thread started the job; prefilled, when the prompt's prefill and the first sample
 * were launched; first_id, when the first id was seen on the host (before it is published). */
typedef struct {
    int64_t entered, prefilled, first_id;
} orcd_job_times;

void orcd_engine_job_times(const orcd_engine *engine, orcd_job_times *out);

/* One job on the engine's own decode thread (started with the first job): returns at once,
 * the token ring emptied and the cancel flag cleared, the prompt and stop ids copied. The job
 * prefills the prompt, then samples and decodes until max_tokens, an id of stop_ids, the end
 * of the context, or orcd_engine_cancel; each id is published to the token ring as soon as it
 * is known (stop ids too). No GIL or caller's thread is needed to start it.
 * n_cached (0 <= n_cached < n_prompt): the first n_cached prompt tokens are the prefix the KV
 * cache holds from the previous job, and prefill starts after them (the prompt cache).
 * ORCD_CUDA_GRAPH=0 at engine creation: no CUDA graph, each step launched kernel by kernel.
 * Only a job that scores its prompt allocates device memory (its prompt's logits), freed at
 * its end; a failed allocation there is ORCD_ERR_OOM and leaves the engine as loaded.
 * ORCD_ERR_INVALID if a job is still running (orcd_engine_job_status with wait first). */
orcd_status orcd_engine_start_job(orcd_engine *engine, const int32_t *prompt, int n_prompt,
                                  int n_cached, const orcd_sampling *params, int max_tokens,
                                  const int32_t *stop_ids, int n_stop);

/* The last job's end: *running while it runs (ORCD_OK then); once it has ended, its status,
 * with its message in orcd_last_error. wait: block until it has ended. */
orcd_status orcd_engine_job_status(orcd_engine *engine, int wait, int *running);

/* Waits up to timeout_ms for ids of the running job past the first `start` ones; copies up to
 * cap of them to out. *n_out: ids copied; *finished: the job has ended and all ids are out.
 * logprobs (NULL, or cap records): the ids' records, for a job with top_logprobs >= 0. */
orcd_status orcd_engine_read_tokens(orcd_engine *engine, int start, int32_t *out, int cap,
                                    int timeout_ms, int *n_out, int *finished,
                                    orcd_logprob *logprobs);
void orcd_engine_cancel(orcd_engine *engine);

/* The records of prompt tokens 1..n (prompt_logprobs): complete once the job's first id is
 * published, or the job has finished. */
orcd_status orcd_engine_prompt_logprobs(orcd_engine *engine, orcd_logprob *out, int n);

/* A constrained job's allowed ids for generated token `step` (0 first): (vocab + 31) / 32
 * words, bit i % 32 of word i / 32 set when id i may be drawn. The decode loop waits for
 * step k's mask before sampling token k (and stops waiting on orcd_engine_cancel). */
orcd_status orcd_engine_put_mask(orcd_engine *engine, int step, const uint32_t *mask, int n_words);

/* The GPU sampler on host logits (tests): the id sample(logits, params, step, history) picks;
 * mask: NULL, or the bitmask of allowed ids as orcd_engine_put_mask takes it. */
orcd_status orcd_sample_host_logits(int device, const float *logits, int vocab,
                                    const orcd_sampling *params, uint64_t step,
                                    const int32_t *history, int n_history,
                                    const uint32_t *mask, int32_t *out);

/* The logprob kernels on host arrays (tests): out[r] for row r of logits[rows][vocab] at
 * ids[r], with top_n alternatives. */
orcd_status orcd_test_logprobs(int device, const float *logits, int rows, int vocab,
                               const int32_t *ids, int top_n, orcd_logprob *out);

#ifdef __cplusplus
}
#endif
#endif
