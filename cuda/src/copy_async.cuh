// Copies from global to shared memory that run while the threads go on (cp.async, sm_80 and
// later): the F16 tiles of the dense prefill product (matmul_dense.cu) and of the experts'
// (moe.cu). A thread's copies join a group at commit; wait<N> returns once at most N of its
// groups are still in flight.
#pragma once
#include <cstdint>

namespace orcd {

// 16 bytes from global memory to the shared address dst, asynchronously; zeros where !valid.
__device__ __forceinline__ void copy16(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void copies_commit() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int Pending>
__device__ __forceinline__ void copies_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}

}  // namespace orcd
