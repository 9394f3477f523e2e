// Kernels that overlap the one before them in the stream (programmatic dependent launch, sm_90
// and later; options.cuh's ORCD_OVERLAP). A kernel launched with `overlap` may start while its
// predecessor still runs: before wait_for_previous_kernel() it may only read what no earlier
// kernel writes (its weights, which it prefetches into L2); after it, everything the earlier
// kernels wrote is visible, as after an ordinary launch boundary. allow_next_kernel() lets the
// next overlapping kernel start; it waits in its turn, so calling it early is always safe.
// Without the launch attribute (or before sm_90) the waits are no-ops and launches serialize.
// The L2 prefetches below serve that overlap, and the persistent decode kernel's.
#pragma once
#include <cstdint>
#include <utility>
#include <cuda_runtime.h>

namespace orcd {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The 128-byte line at p into L2 (every architecture; the persistent decode kernel's prefetch).
__device__ __forceinline__ void prefetch_line_l2(const void *p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// [p, p + bytes) into L2 by the bulk copy engine: p and bytes multiples of 16 (sm_90; a no-op
// before).
__device__ __forceinline__ void prefetch_l2(const void *p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

// Block `block` of `blocks` prefetches its share of [p, p + bytes) (rounded inwards to 16
// bytes), its warp 0 in 32 pieces.
__device__ inline void prefetch_share(const void *p, size_t bytes, int block, int blocks) {
    if (threadIdx.x >= 32 || bytes == 0) return;
    uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t(15);
    uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t(15);
    if (end <= begin) return;
    size_t units = (end - begin) / 16, pieces = size_t(blocks) * 32;
    size_t piece = size_t(block) * 32 + threadIdx.x;
    size_t u0 = units * piece / pieces, u1 = units * (piece + 1) / pieces;
    if (u1 > u0)
        prefetch_l2(reinterpret_cast<const void *>(begin + 16 * u0), uint32_t(16 * (u1 - u0)));
}

// A small vector [p, p + bytes) into L2 by the calling thread (rounded inwards to 16 bytes).
__device__ inline void prefetch_vector(const void *p, size_t bytes) {
    if (!p) return;
    uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t(15);
    uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t(15);
    if (end > begin) prefetch_l2(reinterpret_cast<const void *>(begin), uint32_t(end - begin));
}

// kernel<<<grid, block, smem, stream>>>(args...) with `count` launch attributes (also matmul's
// thread-block clusters).
template <class... Params, class... Args>
cudaError_t launch_with(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                        cudaStream_t stream, cudaLaunchAttribute *attrs, int count,
                        Args &&...args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attrs;
    cfg.numAttrs = count;
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

// The launch attribute that lets a kernel overlap the one before it: the kernel must call
// wait_for_previous_kernel() before it touches the activations.
inline cudaLaunchAttribute overlap_attribute() {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    return attr;
}

// launch_with, with overlap_attribute() when overlap.
template <class... Params, class... Args>
cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, bool overlap, Args &&...args) {
    cudaLaunchAttribute attr = overlap_attribute();
    return launch_with(kernel, grid, block, smem, stream, &attr, overlap ? 1 : 0,
                       std::forward<Args>(args)...);
}

}  // namespace orcd
