// The C API's "kernels on host arrays" (orcd_cuda.h): each call owns its device buffers for
// its own duration, runs one kernel of ops.cuh on the default stream and synchronises.
#include <vector>
#include "attention.cuh"
#include "moe.cuh"
#include "matmul_dense.cuh"
#include "ops.cuh"
#include "quant.cuh"

namespace orcd {
namespace {

class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    ~DeviceBuffer() { cudaFree(ptr_); }
    orcd_status alloc(size_t bytes) {
        return check(cudaMalloc(&ptr_, bytes ? bytes : 1), "cudaMalloc");
    }
    orcd_status upload(const void *src, size_t bytes) {
        ORCD_TRY(alloc(bytes));
        return check(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }
    orcd_status download(void *dst, size_t bytes) const {
        return check(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    }
    template <class T> T *as() const { return static_cast<T *>(ptr_); }

  private:
    void *ptr_ = nullptr;
};

class EventPair {
  public:
    EventPair() = default;
    EventPair(const EventPair &) = delete;
    EventPair &operator=(const EventPair &) = delete;
    ~EventPair() {
        if (start_) cudaEventDestroy(start_);
        if (stop_) cudaEventDestroy(stop_);
    }
    orcd_status start() {
        ORCD_CUDA(cudaEventCreate(&start_));
        ORCD_CUDA(cudaEventCreate(&stop_));
        return check(cudaEventRecord(start_), "cudaEventRecord");
    }
    orcd_status seconds(double *out) {
        ORCD_CUDA(cudaEventRecord(stop_));
        ORCD_CUDA(cudaEventSynchronize(stop_));
        float ms = 0.0f;
        ORCD_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
        *out = ms * 1e-3;
        return ORCD_OK;
    }

  private:
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

orcd_status check_weights(int ggml_type, size_t w_bytes, int rows, int cols) {
    int block_size = 0, type_size = 0;
    ORCD_TRY(orcd_block_layout(ggml_type, &block_size, &type_size));
    if (rows <= 0 || cols <= 0 || cols % block_size)
        return fail(ORCD_ERR_INVALID, "weights of %d x %d do not fit blocks of %d values", rows,
                    cols, block_size);
    size_t need = size_t(rows) * (size_t(cols) / block_size) * type_size;
    if (w_bytes != need)
        return fail(ORCD_ERR_INVALID, "weights of %d x %d in ggml type %d take %zu bytes, got %zu",
                    rows, cols, ggml_type, need, w_bytes);
    return ORCD_OK;
}

// The matvec path of options.cuh's ORCD_MATVEC, read at each call: this API has no engine.
orcd_status matvec_from_env(int ggml_type, const void *w, const float *x, float *y, int rows,
                            int cols) {
    Options o;
    ORCD_TRY(options_from_env(&o));
    return matvec(o.matvec, ggml_type, w, x, y, rows, cols, 0);
}

constexpr int kTestSlabRows = 3 * kDenseSlabRows;  // orcd_test_matmul's split 6

// A MatmulScratch that holds every split's sums of one (rows, cols, n) product, and its F16
// operands whole; split as MatmulScratch::split, 2 as 1 with the sums through global memory
// (never a cluster), 3 as 1 with a clustered block walking its split in steps
// (MatmulScratch::steps), 4 as 0 in wide tiles dequantized as they load (MatmulScratch::wide),
// 5 as 0 in the dense F16 product (MatmulScratch::dense), 6 as 5 with W dequantized in slabs
// of kTestSlabRows where it has more, 7 as 5 on mma.sync (never wgmma); clusters as options.cuh's
// ORCD_CLUSTERS, steps, wide and dense tiles otherwise as ORCD_SPLIT_STEPS, ORCD_WIDE_TILES and
// ORCD_DENSE_TILES, wgmma (where built) as ORCD_WGMMA.
struct ScratchBuffers {
    DeviceBuffer partial, done, dense_w, dense_x;
    MatmulScratch scratch;
    orcd_status alloc(int rows, int cols, int n, int split) {
        int shape[1][2] = {{rows, cols}};
        Options o;
        ORCD_TRY(options_from_env(&o));
        scratch.floats = matmul_scratch_floats(shape, 1, n);
        scratch.counters = matmul_scratch_counters(shape, 1, n);
        scratch.split = split >= 4 ? 0 : split >= 2 ? 1 : split;
        scratch.wide = split == 4 ? 1 : o.wide_tiles ? -1 : 0;
        scratch.dense = split >= 5 ? 1 : split == 4 || !o.dense_tiles ? 0 : -1;
        int slab = split == 6 ? std::min(rows, kTestSlabRows) : rows;
        scratch.dense_w_halves = size_t(slab) * dense_ld(cols);
        scratch.dense_x_halves = size_t(n) * dense_ld(cols);
        ORCD_TRY(dense_w.alloc(scratch.dense_w_halves * sizeof(__half)));
        ORCD_TRY(dense_x.alloc(scratch.dense_x_halves * sizeof(__half)));
        scratch.dense_w = dense_w.as<__half>();
        scratch.dense_x = dense_x.as<__half>();
        scratch.clusters = o.clusters && split != 2;
        ORCD_TRY(dense_wgmma(o.wgmma && split != 7, &scratch.wgmma));
        scratch.steps = split == 3 ? 1 : o.split_steps ? -1 : 0;
        ORCD_TRY(partial.alloc(scratch.floats * sizeof(float)));
        ORCD_TRY(done.alloc(scratch.counters * sizeof(int)));
        ORCD_CUDA(cudaMemset(done.as<void>(), 0, scratch.counters * sizeof(int)));
        scratch.partial = partial.as<float>();
        scratch.done = done.as<int>();
        return ORCD_OK;
    }
};

orcd_status run_weights(int ggml_type, const void *w, const float *x, float *y, int rows,
                        int cols, int n, const MatmulScratch &scratch) {
    return n == 0 ? matvec_from_env(ggml_type, w, x, y, rows, cols)
                  : matmul(ggml_type, w, x, y, rows, cols, n, scratch, 0);
}

constexpr size_t kBenchWeightBytes = size_t(256) << 20;  // several times any L2 of today

orcd_status check_attention(int n, int n_keys, int pos0, const AttentionShape &s,
                            int decode_path) {
    if (n <= 0 || pos0 < 0 || n_keys < pos0 + n)
        return fail(ORCD_ERR_INVALID, "%d queries at position %d need keys 0..%d, got %d", n,
                    pos0, pos0 + n - 1, n_keys);
    if (s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads)
        return fail(ORCD_ERR_INVALID, "%d query heads cannot share %d kv heads", s.heads,
                    s.kv_heads);
    if (s.head_dim <= 0 || s.head_dim % 8 || s.head_dim > kAttentionChunk)
        return fail(ORCD_ERR_INVALID, "head_dim %d is not a multiple of 8 up to %d", s.head_dim,
                    kAttentionChunk);
    if (s.window < 0) return fail(ORCD_ERR_INVALID, "sliding window %d < 0", s.window);
    if (decode_path < 0 || decode_path > 2)
        return fail(ORCD_ERR_INVALID, "attention path %d: use 0 (prefill), 1 (decode) or 2 "
                    "(decode_one_launch)", decode_path);
    if (decode_path > 0 && n != 1)
        return fail(ORCD_ERR_INVALID, "decode takes one query, got %d", n);
    return ORCD_OK;
}

}  // namespace
}  // namespace orcd

using namespace orcd;

extern "C" orcd_status orcd_block_layout(int ggml_type, int *block_size, int *type_size) {
    return with_format(ggml_type, [&](auto f) {
        *block_size = decltype(f)::block_size;
        *type_size = decltype(f)::type_size;
        return ORCD_OK;
    });
}

extern "C" orcd_status orcd_test_matvec(int ggml_type, const void *w, size_t w_bytes,
                                        const float *x, float *y, int rows, int cols) {
    ORCD_TRY(check_weights(ggml_type, w_bytes, rows, cols));
    DeviceBuffer dw, dx, dy;
    ORCD_TRY(dw.upload(w, w_bytes));
    ORCD_TRY(dx.upload(x, sizeof(float) * size_t(cols)));
    ORCD_TRY(dy.alloc(sizeof(float) * size_t(rows)));
    ORCD_TRY(matvec_from_env(ggml_type, dw.as<void>(), dx.as<float>(), dy.as<float>(), rows,
                             cols));
    return dy.download(y, sizeof(float) * size_t(rows));
}

extern "C" orcd_status orcd_test_matmul(int ggml_type, const void *w, size_t w_bytes,
                                        const float *x, float *y, int rows, int cols, int n,
                                        int split) {
    ORCD_TRY(check_weights(ggml_type, w_bytes, rows, cols));
    if (n <= 0) return fail(ORCD_ERR_INVALID, "matmul of %d tokens", n);
    if (split < -1 || split > 7)
        return fail(ORCD_ERR_INVALID, "matmul split %d: use -1 (where the GPU would idle), 0 "
                    "(never), 1 (always), 2 (always, the sums through global memory), 3 "
                    "(always, a clustered block walking its split in steps), 4 (never, in "
                    "wide tiles), 5 (never, the dense F16 product), 6 (5, W in slabs of %d "
                    "rows) or 7 (5 on mma.sync)", split, kTestSlabRows);
    DeviceBuffer dw, dx, dy;
    ScratchBuffers scratch;
    ORCD_TRY(dw.upload(w, w_bytes));
    ORCD_TRY(dx.upload(x, sizeof(float) * size_t(n) * cols));
    ORCD_TRY(dy.alloc(sizeof(float) * size_t(n) * rows));
    ORCD_TRY(scratch.alloc(rows, cols, n, split));
    ORCD_TRY(matmul(ggml_type, dw.as<void>(), dx.as<float>(), dy.as<float>(), rows, cols, n,
                    scratch.scratch, 0));
    return dy.download(y, sizeof(float) * size_t(n) * rows);
}

extern "C" orcd_status orcd_test_embed(int ggml_type, const void *w, size_t w_bytes,
                                       const int32_t *ids, float *out, int rows, int cols, int n) {
    ORCD_TRY(check_weights(ggml_type, w_bytes, rows, cols));
    for (int i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= rows)
            return fail(ORCD_ERR_INVALID, "token id %d is not a row of %d", ids[i], rows);
    DeviceBuffer dw, dids, dout;
    ORCD_TRY(dw.upload(w, w_bytes));
    ORCD_TRY(dids.upload(ids, sizeof(int32_t) * size_t(n)));
    ORCD_TRY(dout.alloc(sizeof(float) * size_t(n) * cols));
    const int32_t *device_ids = dids.as<int32_t>();
    ORCD_TRY(embed_rows(ggml_type, dw.as<void>(), device_ids, dout.as<float>(), cols, n, 0));
    return dout.download(out, sizeof(float) * size_t(n) * cols);
}

extern "C" orcd_status orcd_bench_weights(int ggml_type, const void *w, size_t w_bytes,
                                          int rows, int cols, int n, int iters, double *seconds) {
    ORCD_TRY(check_weights(ggml_type, w_bytes, rows, cols));
    if (n < 0 || iters <= 0)
        return fail(ORCD_ERR_INVALID, "bench of %d tokens, %d iterations", n, iters);
    size_t copies = (kBenchWeightBytes + w_bytes - 1) / w_bytes;
    std::vector<DeviceBuffer> dw(copies);
    for (DeviceBuffer &b : dw) ORCD_TRY(b.upload(w, w_bytes));
    int tokens = n > 0 ? n : 1;
    DeviceBuffer dx, dy;
    ScratchBuffers scratch;
    ORCD_TRY(dx.alloc(sizeof(float) * size_t(tokens) * cols));
    ORCD_TRY(dy.alloc(sizeof(float) * size_t(tokens) * rows));
    ORCD_TRY(scratch.alloc(rows, cols, tokens, -1));
    ORCD_CUDA(cudaMemset(dx.as<void>(), 0, sizeof(float) * size_t(tokens) * cols));
    auto run = [&](const DeviceBuffer &b) {
        return run_weights(ggml_type, b.as<void>(), dx.as<float>(), dy.as<float>(), rows, cols, n,
                           scratch.scratch);
    };
    for (DeviceBuffer &b : dw) ORCD_TRY(run(b));  // warm-up: first launches, clocks
    EventPair timer;
    ORCD_TRY(timer.start());
    for (int i = 0; i < iters; ++i) ORCD_TRY(run(dw[size_t(i) % copies]));
    ORCD_TRY(timer.seconds(seconds));
    *seconds /= iters;
    return ORCD_OK;
}

extern "C" orcd_status orcd_bench_copy(size_t bytes, int iters, double *bytes_per_second) {
    if (bytes == 0 || iters <= 0)
        return fail(ORCD_ERR_INVALID, "copy bench of %zu bytes, %d iterations", bytes, iters);
    DeviceBuffer src, dst;
    ORCD_TRY(src.alloc(bytes));
    ORCD_TRY(dst.alloc(bytes));
    ORCD_CUDA(cudaMemset(src.as<void>(), 0, bytes));
    ORCD_CUDA(cudaMemcpy(dst.as<void>(), src.as<void>(), bytes, cudaMemcpyDeviceToDevice));
    EventPair timer;
    ORCD_TRY(timer.start());
    for (int i = 0; i < iters; ++i)
        ORCD_CUDA(cudaMemcpyAsync(dst.as<void>(), src.as<void>(), bytes, cudaMemcpyDeviceToDevice));
    double seconds = 0.0;
    ORCD_TRY(timer.seconds(&seconds));
    *bytes_per_second = 2.0 * double(bytes) * iters / seconds;
    return ORCD_OK;
}

extern "C" orcd_status orcd_test_attention(const float *q, int n, const float *k, const float *v,
                                           int n_keys, int heads, int kv_heads, int head_dim,
                                           int window, const float *sinks, int pos0,
                                           int decode_path, float *out) {
    AttentionShape s{heads, kv_heads, head_dim, n_keys, window};
    ORCD_TRY(check_attention(n, n_keys, pos0, s, decode_path));
    size_t q_bytes = sizeof(float) * size_t(n) * heads * head_dim;
    size_t kv_values = size_t(n_keys) * kv_heads * head_dim;
    int positions[2] = {0, pos0};  // where the keys go, where the queries are
    DeviceBuffer dq, dk, dv, dsinks, dpos, k_cache, v_cache, dout, partial, prefill_partial, done;
    ORCD_TRY(dq.upload(q, q_bytes));
    ORCD_TRY(dk.upload(k, sizeof(float) * kv_values));
    ORCD_TRY(dv.upload(v, sizeof(float) * kv_values));
    ORCD_TRY(dpos.upload(positions, sizeof(positions)));
    if (sinks) ORCD_TRY(dsinks.upload(sinks, sizeof(float) * size_t(heads)));
    ORCD_TRY(k_cache.alloc(sizeof(half) * kv_values));
    ORCD_TRY(v_cache.alloc(sizeof(half) * kv_values));
    ORCD_TRY(dout.alloc(q_bytes));
    ORCD_TRY(partial.alloc(sizeof(float) * attention_decode_partial_floats(s)));
    size_t prefill_floats = attention_prefill_partial_floats(s);
    ORCD_TRY(prefill_partial.alloc(sizeof(float) * prefill_floats));
    ORCD_TRY(done.alloc(sizeof(int) * size_t(heads)));
    ORCD_CUDA(cudaMemset(done.as<void>(), 0, sizeof(int) * size_t(heads)));
    const int *keys_at = dpos.as<int>(), *queries_at = keys_at + 1;
    const half *kc = k_cache.as<half>(), *vc = v_cache.as<half>();
    const float *sink = sinks ? dsinks.as<float>() : nullptr;
    ORCD_TRY(kv_store(dk.as<float>(), dv.as<float>(), kv_heads * head_dim, n_keys,
                      k_cache.as<half>(), v_cache.as<half>(), s, keys_at, 0));
    auto attend = [&] {
        float *o = dout.as<float>();
        if (decode_path == 1)
            return attention_decode(dq.as<float>(), kc, vc, o, partial.as<float>(), s, queries_at,
                                    0, sink);
        if (decode_path == 2)
            return attention_decode_one_launch(dq.as<float>(), kc, vc, o, partial.as<float>(),
                                               done.as<int>(), s, queries_at, 0, sink);
        return attention_prefill(dq.as<float>(), heads * head_dim, kc, vc, o, n, s, queries_at, 0,
                                 sink, prefill_partial.as<float>(), prefill_floats);
    };
    for (int run = 0; run < 2; ++run) {
        ORCD_CUDA(cudaMemset(dout.as<void>(), 0xFF, q_bytes));  // all-ones bytes: NaN floats
        ORCD_TRY(attend());
    }
    return dout.download(out, q_bytes);
}

extern "C" orcd_status orcd_bench_attention(int heads, int kv_heads, int head_dim, int n,
                                            int pos0, int iters, double *seconds) {
    AttentionShape s{heads, kv_heads, head_dim, pos0 + n};
    ORCD_TRY(check_attention(n, pos0 + n, pos0, s, 0));
    if (iters <= 0) return fail(ORCD_ERR_INVALID, "attention bench of %d iterations", iters);
    size_t q_bytes = sizeof(float) * size_t(n) * heads * head_dim;
    size_t kv_bytes = sizeof(half) * size_t(pos0 + n) * kv_heads * head_dim;
    DeviceBuffer dq, k_cache, v_cache, dout, dpos, partial;
    ORCD_TRY(dq.alloc(q_bytes));
    ORCD_TRY(k_cache.alloc(kv_bytes));
    ORCD_TRY(v_cache.alloc(kv_bytes));
    ORCD_TRY(dout.alloc(q_bytes));
    ORCD_TRY(dpos.upload(&pos0, sizeof(pos0)));
    size_t partial_floats = attention_prefill_partial_floats(s);
    ORCD_TRY(partial.alloc(sizeof(float) * partial_floats));
    // bytes 0x3C: q 0.0115, k and v 1.06 (the time does not depend on the values)
    ORCD_CUDA(cudaMemset(dq.as<void>(), 0x3C, q_bytes));
    ORCD_CUDA(cudaMemset(k_cache.as<void>(), 0x3C, kv_bytes));
    ORCD_CUDA(cudaMemset(v_cache.as<void>(), 0x3C, kv_bytes));
    auto call = [&] {
        return attention_prefill(dq.as<float>(), heads * head_dim, k_cache.as<half>(),
                                 v_cache.as<half>(), dout.as<float>(), n, s, dpos.as<int>(), 0,
                                 nullptr, partial.as<float>(), partial_floats);
    };
    ORCD_TRY(call());  // warm-up: first launch, shared-memory attribute
    EventPair timer;
    ORCD_TRY(timer.start());
    for (int i = 0; i < iters; ++i) ORCD_TRY(call());
    ORCD_TRY(timer.seconds(seconds));
    *seconds /= iters;
    return ORCD_OK;
}

namespace orcd {
namespace {

// An orcd_moe_layer copied to the device.
class DeviceMoe {
  public:
    orcd_status upload(const orcd_moe_layer &l) {
        if (l.d <= 0 || l.ff <= 0 || l.experts <= 0 || l.used <= 0)
            return fail(ORCD_ERR_INVALID, "moe layer of d %d, ff %d, %d of %d experts", l.d,
                        l.ff, l.used, l.experts);
        ORCD_TRY(check_weights(l.gate_up_type, l.gate_up_bytes, l.experts * l.ff, l.d));
        ORCD_TRY(check_weights(l.down_type, l.down_bytes, l.experts * l.d, l.ff));
        size_t experts = size_t(l.experts);
        ORCD_TRY(router_w_.upload(l.router_w, sizeof(float) * experts * l.d));
        ORCD_TRY(router_b_.upload(l.router_b, sizeof(float) * experts));
        ORCD_TRY(gate_.upload(l.gate, l.gate_up_bytes));
        ORCD_TRY(up_.upload(l.up, l.gate_up_bytes));
        ORCD_TRY(down_.upload(l.down, l.down_bytes));
        ORCD_TRY(gate_b_.upload(l.gate_b, sizeof(float) * experts * l.ff));
        ORCD_TRY(up_b_.upload(l.up_b, sizeof(float) * experts * l.ff));
        ORCD_TRY(down_b_.upload(l.down_b, sizeof(float) * experts * l.d));
        w = {router_w_.as<float>(), router_b_.as<float>(), l.gate_up_type, l.down_type,
             gate_.as<void>(), up_.as<void>(), down_.as<void>(), gate_b_.as<float>(),
             up_b_.as<float>(), down_b_.as<float>(), l.experts, l.used, l.d, l.ff};
        Options o;  // prefill on wgmma as the engine's (ORCD_WGMMA)
        ORCD_TRY(options_from_env(&o));
        return dense_wgmma(o.wgmma, &w.wgmma);
    }
    MoeWeights w{};

  private:
    DeviceBuffer router_w_, router_b_, gate_, up_, down_, gate_b_, up_b_, down_b_;
};

}  // namespace
}  // namespace orcd

extern "C" orcd_status orcd_test_moe(const orcd_moe_layer *layer, const float *xn, float *x,
                                     int n) {
    if (n <= 0) return fail(ORCD_ERR_INVALID, "moe of %d tokens", n);
    DeviceMoe m;
    ORCD_TRY(m.upload(*layer));
    size_t x_bytes = sizeof(float) * size_t(n) * layer->d;
    DeviceBuffer dxn, dx, scratch;
    ORCD_TRY(dxn.upload(xn, x_bytes));
    ORCD_TRY(dx.upload(x, x_bytes));
    size_t scratch_bytes = moe_scratch_bytes(m.w, n);
    ORCD_TRY(scratch.alloc(scratch_bytes));
    ORCD_CUDA(cudaMemset(scratch.as<void>(), 0xFF, scratch_bytes));
    ORCD_TRY(moe(m.w, dxn.as<float>(), dx.as<float>(), n, scratch.as<void>(), 0));
    return dx.download(x, x_bytes);
}

extern "C" orcd_status orcd_bench_moe(const orcd_moe_layer *layer, const float *xn, int tokens,
                                      int n, int iters, double *seconds) {
    if (n <= 0 || tokens < n || tokens % n || iters <= 0)
        return fail(ORCD_ERR_INVALID, "moe bench of %d of %d tokens, %d iterations", n, tokens,
                    iters);
    DeviceMoe m;
    ORCD_TRY(m.upload(*layer));
    size_t x_bytes = sizeof(float) * size_t(tokens) * layer->d;
    DeviceBuffer dxn, dx, scratch;
    ORCD_TRY(dxn.upload(xn, x_bytes));
    ORCD_TRY(dx.alloc(x_bytes));
    ORCD_CUDA(cudaMemset(dx.as<void>(), 0, x_bytes));
    ORCD_TRY(scratch.alloc(moe_scratch_bytes(m.w, n)));
    int batches = tokens / n;
    auto call = [&](int i) {
        size_t row = size_t(i % batches) * n * layer->d;
        return moe(m.w, dxn.as<float>() + row, dx.as<float>() + row, n, scratch.as<void>(), 0);
    };
    for (int i = 0; i < batches; ++i) ORCD_TRY(call(i));  // warm-up: first launches, clocks
    EventPair timer;
    ORCD_TRY(timer.start());
    for (int i = 0; i < iters; ++i) ORCD_TRY(call(i));
    ORCD_TRY(timer.seconds(seconds));
    *seconds /= iters;
    return ORCD_OK;
}
