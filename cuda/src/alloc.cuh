// The one device allocator of an engine: every cudaMalloc goes through it, so the bytes the
// worker holds are known (vram_bytes_used) and every allocation can be checked for residency.
// Thread-safe: the periodic residency check runs beside a job.
#pragma once
#include <cstddef>
#include <mutex>
#include <vector>
#include "common.cuh"

namespace orcd {

class Allocator {
  public:
    // Reads the test-only fault hook ORCD_FAULT=alloc:N: the N-th allocation made through
    // this allocator (counted from 1 at its construction, i.e. at engine creation) fails as
    // an out-of-memory, once.
    Allocator();
    ~Allocator() { release_since(0); }
    Allocator(const Allocator &) = delete;
    Allocator &operator=(const Allocator &) = delete;

    orcd_status alloc(void **ptr, size_t bytes, const char *what);
    template <class T>
    orcd_status alloc(T **ptr, size_t count, const char *what) {
        return alloc(reinterpret_cast<void **>(ptr), count * sizeof(T), what);
    }

    // Allocations are released in scopes: mark() before, release_since(mark) after.
    size_t mark() const;
    void release_since(size_t mark);

    size_t bytes_used() const;
    long allocations_made() const;

    // Every live allocation is device memory with no host mapping (SPEC §4).
    orcd_status check_residency(bool *resident) const;

  private:
    struct Block {
        void *ptr;
        size_t bytes;
    };
    mutable std::mutex mu_;
    std::vector<Block> live_;
    size_t bytes_ = 0;
    long made_ = 0;
    long fault_at_ = 0;
};

}  // namespace orcd
