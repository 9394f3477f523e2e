// Warp and block reductions in a fixed order (shuffle butterflies, then warp 0 over the
// warps' partials), so a sum or max is the same from run to run.
#pragma once
#include <cfloat>

namespace orcd {

__device__ __forceinline__ float warp_reduce_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ __forceinline__ float warp_reduce_max(float v) {
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}

// Every thread of the block gets the result; blockDim.x is a multiple of 32, at most 1024.
template <bool Max>
__device__ float block_reduce(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = Max ? warp_reduce_max(v) : warp_reduce_sum(v);
    __syncthreads();  // `partial` may still be read by a previous reduction
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float identity = Max ? -FLT_MAX : 0.0f;
    v = lane < warps ? partial[lane] : identity;
    return Max ? warp_reduce_max(v) : warp_reduce_sum(v);
}

__device__ __forceinline__ float block_sum(float v) { return block_reduce<false>(v); }
__device__ __forceinline__ float block_max(float v) { return block_reduce<true>(v); }

}  // namespace orcd
