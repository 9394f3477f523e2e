// The C API's "kernels on host arrays" (orcd_cuda.h): each call owns its device buffers for
// its own duration, runs one kernel of ops.cuh on the default stream and synchronises.
#include <vector>
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

orcd_status run_weights(int ggml_type, const void *w, const float *x, float *y, int rows,
                        int cols, int n) {
    return n == 0 ? matvec(ggml_type, w, x, y, rows, cols, nullptr, 0)
                  : matmul(ggml_type, w, x, y, rows, cols, n, nullptr, 0);
}

constexpr size_t kBenchWeightBytes = size_t(256) << 20;  // several times any L2 of today

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
    ORCD_TRY(matvec(ggml_type, dw.as<void>(), dx.as<float>(), dy.as<float>(), rows, cols,
                    nullptr, 0));
    return dy.download(y, sizeof(float) * size_t(rows));
}

extern "C" orcd_status orcd_test_matmul(int ggml_type, const void *w, size_t w_bytes,
                                        const float *x, float *y, int rows, int cols, int n) {
    ORCD_TRY(check_weights(ggml_type, w_bytes, rows, cols));
    if (n <= 0) return fail(ORCD_ERR_INVALID, "matmul of %d tokens", n);
    DeviceBuffer dw, dx, dy;
    ORCD_TRY(dw.upload(w, w_bytes));
    ORCD_TRY(dx.upload(x, sizeof(float) * size_t(n) * cols));
    ORCD_TRY(dy.alloc(sizeof(float) * size_t(n) * rows));
    ORCD_TRY(matmul(ggml_type, dw.as<void>(), dx.as<float>(), dy.as<float>(), rows, cols, n,
                    nullptr, 0));
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
    ORCD_TRY(dx.alloc(sizeof(float) * size_t(tokens) * cols));
    ORCD_TRY(dy.alloc(sizeof(float) * size_t(tokens) * rows));
    ORCD_CUDA(cudaMemset(dx.as<void>(), 0, sizeof(float) * size_t(tokens) * cols));
    auto run = [&](const DeviceBuffer &b) {
        return run_weights(ggml_type, b.as<void>(), dx.as<float>(), dy.as<float>(), rows, cols, n);
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
