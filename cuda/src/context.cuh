#pragma once
#include <atomic>
#include "common.cuh"

namespace orcd {

constexpr int kMaxDevices = 64;  // devices whose answers are kept

// `query`'s answer (nonzero) for the current device, asked once per device (each time past
// kMaxDevices) and kept in `cache`: query(int device, int *answer) -> orcd_status.
template <class Query>
orcd_status per_device(std::atomic<int> (&cache)[kMaxDevices], Query query, int *out) {
    int device = 0;
    ORCD_CUDA(cudaGetDevice(&device));
    if (device >= kMaxDevices) return query(device, out);
    int n = cache[device].load(std::memory_order_relaxed);
    if (n == 0) {
        ORCD_TRY(query(device, &n));
        cache[device].store(n, std::memory_order_relaxed);
    }
    *out = n;
    return ORCD_OK;
}

// Selects and validates the device for this host thread and sets the device malloc heap to
// 0 (nothing of orcd allocates from kernels).
orcd_status context_init(int device);

// The current device's multiprocessor count, queried once per device and then cached: the
// launch shapes of the decode kernels read it at every launch.
orcd_status multiprocessors(int *out);

// The same for its compute capability's major number.
orcd_status compute_major(int *out);

// Makes `device` current on the calling host thread (the decode loop runs on its own thread).
orcd_status use_device(int device);

}  // namespace orcd
