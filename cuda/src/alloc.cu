// Accounting device allocator with a fault hook and a residency check.
#include <cstdlib>
#include <cstring>
#include "alloc.cuh"

namespace orcd {

static long fault_allocation_from_env() {
    const char *spec = getenv("ORCD_FAULT");
    if (!spec || strncmp(spec, "alloc:", 6) != 0) return 0;
    return strtol(spec + 6, nullptr, 10);
}

Allocator::Allocator() : fault_at_(fault_allocation_from_env()) {}

orcd_status Allocator::alloc(void **ptr, size_t bytes, const char *what) {
    std::lock_guard<std::mutex> lock(mu_);
    *ptr = nullptr;
    if (++made_ == fault_at_)
        return fail(ORCD_ERR_OOM, "out of GPU memory allocating %zu bytes for %s "
                    "(injected by ORCD_FAULT=alloc:%ld)", bytes, what, fault_at_);
    // Whole 16-byte granules (cudaMalloc's own are larger): the persistent decode kernel's bulk
    // copies read a tensor's last row up to the next 16-byte boundary.
    cudaError_t err = cudaMalloc(ptr, bytes ? (bytes + 15) / 16 * 16 : 16);
    if (err != cudaSuccess) {
        cudaGetLastError();
        *ptr = nullptr;
        return fail(err == cudaErrorMemoryAllocation ? ORCD_ERR_OOM : ORCD_ERR_CUDA,
                    "cudaMalloc of %zu bytes for %s failed: %s (%zu bytes already held)",
                    bytes, what, cudaGetErrorString(err), bytes_);
    }
    live_.push_back({*ptr, bytes});
    bytes_ += bytes;
    return ORCD_OK;
}

size_t Allocator::mark() const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.size();
}

size_t Allocator::bytes_used() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
}

long Allocator::allocations_made() const {
    std::lock_guard<std::mutex> lock(mu_);
    return made_;
}

void Allocator::release_since(size_t mark) {
    std::lock_guard<std::mutex> lock(mu_);
    while (live_.size() > mark) {
        cudaFree(live_.back().ptr);  // a failed free leaves nothing to recover: the bytes are gone
        bytes_ -= live_.back().bytes;
        live_.pop_back();
    }
}

orcd_status Allocator::check_residency(bool *resident) const {
    std::lock_guard<std::mutex> lock(mu_);
    *resident = true;
    for (const Block &b : live_) {
        cudaPointerAttributes attr;
        ORCD_CUDA(cudaPointerGetAttributes(&attr, b.ptr));
        if (attr.type != cudaMemoryTypeDevice || attr.hostPointer != nullptr) *resident = false;
    }
    return ORCD_OK;
}

}  // namespace orcd
