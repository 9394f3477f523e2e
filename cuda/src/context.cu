// Device discovery and the last-error slot of the C API.
#include <atomic>
#include <cstdarg>
#include <cstring>
#include "common.cuh"
#include "context.cuh"

static thread_local char g_last_error[1024];

namespace orcd {
orcd_status fail(orcd_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return status;
}
}  // namespace orcd

extern "C" const char *orcd_last_error(void) { return g_last_error; }

extern "C" int orcd_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {  // no driver or no device: not an error here
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" int orcd_runtime_version(void) {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return v;
}

extern "C" orcd_status orcd_device_info_get(int device, orcd_device_info *out) {
    int n = orcd_device_count();
    if (device < 0 || device >= n)
        return orcd::fail(ORCD_ERR_NO_DEVICE, "GPU device %d not found (%d device%s visible)",
                          device, n, n == 1 ? "" : "s");
    cudaDeviceProp p;
    ORCD_CUDA(cudaGetDeviceProperties(&p, device));
    memset(out, 0, sizeof *out);
    memcpy(out->name, p.name, sizeof out->name - 1);  // memset above keeps the terminator
    out->sm = p.major * 10 + p.minor;
    out->multiprocessors = p.multiProcessorCount;
    ORCD_CUDA(cudaSetDevice(device));
    ORCD_CUDA(cudaMemGetInfo(&out->free_bytes, &out->total_bytes));
    return ORCD_OK;
}

namespace orcd {

constexpr int kMinSm = 80;  // the oldest architecture the library is built for

orcd_status context_init(int device) {
    int n = orcd_device_count();
    if (device < 0 || device >= n)
        return fail(ORCD_ERR_NO_DEVICE, "GPU device %d not found (%d CUDA device%s visible); "
                    "run with --device cpu for the NumPy reference backend", device, n,
                    n == 1 ? "" : "s");
    ORCD_CUDA(cudaSetDevice(device));
    ORCD_CUDA(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 0));
    cudaDeviceProp p;
    ORCD_CUDA(cudaGetDeviceProperties(&p, device));
    if (p.major * 10 + p.minor < kMinSm)
        return fail(ORCD_ERR_NO_DEVICE, "GPU device %d (%s) has compute capability %d.%d; orcd "
                    "needs 8.0 or later", device, p.name, p.major, p.minor);
    return ORCD_OK;
}

orcd_status use_device(int device) { return check(cudaSetDevice(device), "cudaSetDevice"); }

// Attribute `attr` of the current device, queried once per device and cached in `cache`.
static orcd_status cached_attribute(cudaDeviceAttr attr, std::atomic<int> (&cache)[kMaxDevices],
                                    const char *what, int *out) {
    return per_device(cache, [&](int device, int *n) {
        return check(cudaDeviceGetAttribute(n, attr, device), what);
    }, out);
}

orcd_status multiprocessors(int *out) {
    static std::atomic<int> cache[kMaxDevices];
    return cached_attribute(cudaDevAttrMultiProcessorCount, cache, "multiprocessor count", out);
}

orcd_status compute_major(int *out) {
    static std::atomic<int> cache[kMaxDevices];
    return cached_attribute(cudaDevAttrComputeCapabilityMajor, cache, "compute capability", out);
}

}  // namespace orcd
