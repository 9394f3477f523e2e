// How long one grid-wide barrier takes on this GPU, for the ways to build one. The persistent
// decode kernel (cuda/src/decode_persistent.cu) meets at five a layer; on the H200 its stages'
// barriers measured ~1.3-2 µs each inside the step (session 14), and this times them alone:
//
//   nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/grid_barrier bench/grid_barrier.cu && /tmp/grid_barrier
//
// Every block (one or two an SM, 256 threads) passes `kRounds` barriers; the figure is the
// kernel's time over kRounds, best of five launches.
//   fence    as decode_persistent.cu's grid_sync: __threadfence, atomicAdd, a volatile spin,
//            __threadfence (cooperative groups' grid sync does the same)
//   acq_rel  a release reduction and an acquire spin, no full fences
//   cluster  the blocks of a cluster of 8 meet first (barrier.cluster), one of them arrives for
//            all (acq_rel), then the cluster meets again: 8 times fewer arrivals on the word
#include <cooperative_groups.h>
#include <cstdio>
#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;
constexpr int kRounds = 10000;
constexpr int kCluster = 8;

__device__ __forceinline__ void red_release(unsigned *p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__global__ void __launch_bounds__(kThreads) fence_kernel(unsigned *count) {
    unsigned target = 0;
    for (int r = 0; r < kRounds; ++r) {
        target += gridDim.x;
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            atomicAdd(count, 1u);
            while (*reinterpret_cast<volatile unsigned *>(count) < target) {
            }
            __threadfence();
        }
        __syncthreads();
    }
}

__global__ void __launch_bounds__(kThreads) acq_rel_kernel(unsigned *count) {
    unsigned target = 0;
    for (int r = 0; r < kRounds; ++r) {
        target += gridDim.x;
        __syncthreads();
        if (threadIdx.x == 0) {
            red_release(count, 1u);
            while (ld_acquire(count) < target) {
            }
        }
        __syncthreads();
    }
}

__global__ void __cluster_dims__(kCluster, 1, 1) __launch_bounds__(kThreads)
cluster_kernel(unsigned *count) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    unsigned target = 0, clusters = gridDim.x / kCluster;
    for (int r = 0; r < kRounds; ++r) {
        target += clusters;
        cluster.sync();
        if (cluster.block_rank() == 0 && threadIdx.x == 0) {
            red_release(count, 1u);
            while (ld_acquire(count) < target) {
            }
        }
        cluster.sync();
    }
}

template <class Kernel>
float time_us(Kernel kernel, int blocks, unsigned *count) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    float best = 1e30f;
    for (int run = 0; run < 5; ++run) {
        cudaMemset(count, 0, sizeof(unsigned));
        cudaEventRecord(start);
        kernel<<<blocks, kThreads>>>(count);
        cudaEventRecord(stop);
        cudaEventSynchronize(stop);
        float ms = 0.0f;
        cudaEventElapsedTime(&ms, start, stop);
        best = ms < best ? ms : best;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return best * 1000.0f / kRounds;
}

}  // namespace

int main() {
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    unsigned *count = nullptr;
    if (cudaMalloc(&count, sizeof(unsigned)) != cudaSuccess) {
        std::fprintf(stderr, "grid_barrier: no GPU memory\n");
        return 1;
    }
    std::printf("%d SMs, %d threads a block, %d barriers a launch (us per barrier)\n", sms,
                kThreads, kRounds);
    for (int per_sm : {1, 2}) {
        int blocks = sms * per_sm / kCluster * kCluster;  // whole clusters, all resident
        std::printf("%4d blocks  fence %.3f  acq_rel %.3f  cluster %.3f\n", blocks,
                    time_us(fence_kernel, blocks, count), time_us(acq_rel_kernel, blocks, count),
                    time_us(cluster_kernel, blocks, count));
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        std::fprintf(stderr, "grid_barrier: %s\n", cudaGetErrorString(err));
        return 1;
    }
    return 0;
}
