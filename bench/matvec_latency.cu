// How fast one decode matvec can be on this GPU, for the shapes of the targets' layers: the time a
// launch takes in a chain of the same matvec (a CUDA graph of kChain launches or more, each
// overlapping the one before as orcd's fused decode kernels do: programmatic dependent launch),
// for a few ways to build it, beside a chain of empty kernels. orcd's fused kernels take ~6 us an
// op (Qwen2.5-0.5B shape: 31 us a layer of five; ncu: ~1,170 instructions a warp at ~13 cycles
// each, 3-4 warps an SM): this says how much of that the op's math and memory need, and which
// structure gets there.
//
//   nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/matvec_latency bench/matvec_latency.cu && /tmp/matvec_latency
//
// Weights have Q8_0's bytes (32 int8 and an F16 scale per 32 columns) in one of two layouts:
// the GGUF's blocks of 34 bytes (2-byte aligned: read as the 16-byte chunks that hold them, then
// shifted into place, as quant.cuh's Bytes does), or repacked into a plane of quants (16-byte
// aligned) and a plane of scales. x is F32, the residual stream. The ways:
//   stage  each block rmsnorms x (where the op has a norm) and rounds it to Q8_1 in shared
//          memory, as orcd's fused kernels do; then each warp dots its rows, a lane a 32-value
//          unit a step
//   ahead  the same, the warp's first rows' units loaded before it waits for the kernel before
//          (weights are never written)
//   q8x    x already Q8_1 in global memory (as if the kernel before had rounded it): no staging,
//          no block barrier; the weights' first units loaded before the wait, each lane's unit
//          of x after it
// each with 1, 2 or 4 rows a warp (the rows' loads in flight together) and 4 or 8 warps a block.
// The launches of a chain read copies of the weights in turn, as many as make 128 MB or more, so
// that they come from memory (a decode step reads every layer once) and not from the 60 MB L2.
// Every way's y is checked against the host's (the same Q8_1 x: integer dots, float sums in
// another order).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdlib>
#include <vector>

namespace {

constexpr int kChain = 100;  // launches a graph
constexpr int kMaxCols = 4864;
constexpr int kBlockBytes = 34;  // Q8_0: F16 scale, 32 int8

#define CHECK(call)                                                                        \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            std::fprintf(stderr, "matvec_latency: %s: %s\n", #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                  \
        }                                                                                  \
    } while (0)

enum Mode { kStage, kAhead, kQ8x };
const char *const kModeNames[] = {"stage", "ahead", "q8x"};

struct Args {
    const uint8_t *w;      // interleaved blocks, rows x cols/32
    const int8_t *wq;      // planes: quants, rows x cols
    const __half *wd;      // planes: scales, rows x cols/32
    const float *x, *norm;  // norm null: none
    const int8_t *xq;      // q8x: x as Q8_1 in global memory
    const float *xd;
    float *y;
    int rows, cols;
};

__device__ __forceinline__ void wait_for_previous_kernel() {
    asm volatile("griddepcontrol.wait;" ::: "memory");
}
__device__ __forceinline__ void allow_next_kernel() {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ float block_sum(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < int(blockDim.x / 32) ? part[lane] : 0.0f;
    return warp_sum(v);
}

// One unit (32 columns) of a weight row or of x as Q8_1: 8 words of int8 values and the scale.
struct Unit {
    uint32_t q[8];
    float d;
};

// The 8 words at byte `s` (even, 0..16) of 12 loaded words: whole words by selects, then the
// half-word shift (static register indices, no local memory).
__device__ __forceinline__ void words_at(const uint32_t (&r)[12], int s, uint32_t (&out)[8]) {
    uint32_t t[12];
#pragma unroll
    for (int j = 0; j < 12; ++j) t[j] = r[j];
#pragma unroll
    for (int j = 0; j < 8; ++j) t[j] = s & 16 ? t[j + 4] : t[j];
#pragma unroll
    for (int j = 0; j < 10; ++j) t[j] = s & 8 ? t[j + 2] : t[j];
#pragma unroll
    for (int j = 0; j < 9; ++j) t[j] = s & 4 ? t[j + 1] : t[j];
#pragma unroll
    for (int j = 0; j < 8; ++j) out[j] = __funnelshift_r(t[j], t[j + 1], 8 * (s & 3));
}

template <bool Planes>
struct UnitLoad {
    uint4 c[3];  // interleaved: the 16-byte chunks that hold the block; planes: c[0..1], d in c[2].x
    int off;

    __device__ __forceinline__ void load(const Args &a, int row, int u, bool ahead = false) {
        if constexpr (Planes) {
            const uint4 *q = reinterpret_cast<const uint4 *>(a.wq + size_t(row) * a.cols + 32 * u);
            c[0] = ahead ? __ldcg(q) : __ldg(q);
            c[1] = ahead ? __ldcg(q + 1) : __ldg(q + 1);
            const unsigned short *d = reinterpret_cast<const unsigned short *>(a.wd) + size_t(row) * (a.cols / 32) + u;
            c[2].x = ahead ? __ldcg(d) : __ldg(d);
            off = 0;
        } else {
            const uint8_t *p = a.w + (size_t(row) * (a.cols / 32) + u) * kBlockBytes;
            uintptr_t addr = reinterpret_cast<uintptr_t>(p);
            const uint4 *base = reinterpret_cast<const uint4 *>(addr & ~uintptr_t(15));
            off = int(addr & 15);
#pragma unroll
            for (int i = 0; i < 3; ++i) c[i] = ahead ? __ldcg(base + i) : __ldg(base + i);  // off + 34 <= 48
        }
    }

    __device__ __forceinline__ Unit unpack() const {
        Unit w;
        if constexpr (Planes) {
            uint32_t r[8] = {c[0].x, c[0].y, c[0].z, c[0].w, c[1].x, c[1].y, c[1].z, c[1].w};
#pragma unroll
            for (int j = 0; j < 8; ++j) w.q[j] = r[j];
            __half_raw h;
            h.x = static_cast<unsigned short>(c[2].x);
            w.d = __half2float(__half(h));
        } else {
            uint32_t r[12] = {c[0].x, c[0].y, c[0].z, c[0].w, c[1].x, c[1].y,
                              c[1].z, c[1].w, c[2].x, c[2].y, c[2].z, c[2].w};
            uint32_t scale[8];
            words_at(r, off, scale);  // the scale's two bytes first
            words_at(r, off + 2, w.q);
            __half_raw h;
            h.x = static_cast<unsigned short>(scale[0] & 0xFFFFu);
            w.d = __half2float(__half(h));
        }
        return w;
    }
};

// Unit u of x as Q8_1, from shared or global memory.
__device__ __forceinline__ Unit x_unit(const int8_t *xq, const float *xd, int u, bool global) {
    Unit x;
    const uint4 *q = reinterpret_cast<const uint4 *>(xq + 32 * u);
    uint4 a = global ? __ldcg(q) : q[0], b = global ? __ldcg(q + 1) : q[1];
    x.q[0] = a.x, x.q[1] = a.y, x.q[2] = a.z, x.q[3] = a.w;
    x.q[4] = b.x, x.q[5] = b.y, x.q[6] = b.z, x.q[7] = b.w;
    x.d = global ? __ldcg(xd + u) : xd[u];
    return x;
}

__device__ __forceinline__ float dot(const Unit &w, const Unit &x) {
    int s = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) s = __dp4a(int(w.q[j]), int(x.q[j]), s);
    return w.d * x.d * float(s);
}

// Quad i of x̂ into Q8_1 (the 8 lanes of a unit meet over shuffles): as the host's quantize_x.
__device__ __forceinline__ void quantize_quad(float4 v, int i, int8_t *q, float *d) {
    unsigned group = 0xFFu << (threadIdx.x % 32 & ~7u);
    float m = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    for (int o = 4; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(group, m, o));
    float scale = m / 127.0f, inv = m > 0.0f ? 127.0f / m : 0.0f;
    char4 c = make_char4(__float2int_rn(v.x * inv), __float2int_rn(v.y * inv),
                         __float2int_rn(v.z * inv), __float2int_rn(v.w * inv));
    reinterpret_cast<char4 *>(q)[i] = c;
    if (threadIdx.x % 8 == 0) d[i / 8] = scale;
}

// x̂ = rmsnorm(x) · norm (or x) as Q8_1 into q, d; every thread of the block calls it. Where
// kQuads quads a thread hold the row, x is loaded once; else twice (its squares, then x̂).
constexpr int kQuads = 4;

__device__ __forceinline__ float4 x_quad(const float *x, int i, int cols) {
    return 4 * i < cols ? __ldcg(reinterpret_cast<const float4 *>(x) + i) : make_float4(0, 0, 0, 0);
}

__device__ __forceinline__ float squares(float4 v) {
    return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
}

// Quad i of x̂ (a unit's 8 lanes are all in or all out: cols % 32 == 0).
__device__ __forceinline__ void stage_quad(float4 t, int i, const float *norm, float inv_rms,
                                           int8_t *q, float *d) {
    if (norm) {
        float4 n = __ldg(reinterpret_cast<const float4 *>(norm) + i);
        t = make_float4(t.x * inv_rms * n.x, t.y * inv_rms * n.y, t.z * inv_rms * n.z,
                        t.w * inv_rms * n.w);
    }
    quantize_quad(t, i, q, d);
}

__device__ __forceinline__ void stage_x(const float *x, const float *norm, int cols, int8_t *q,
                                        float *d) {
    int quads = cols / 4, batch = kQuads * int(blockDim.x);
    if (quads <= batch) {
        float4 v[kQuads];
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < kQuads; ++j) {
            v[j] = x_quad(x, threadIdx.x + j * blockDim.x, cols);
            ss += squares(v[j]);
        }
        float inv_rms = norm ? rsqrtf(block_sum(ss) / cols + 1e-6f) : 1.0f;
#pragma unroll
        for (int j = 0; j < kQuads; ++j) {
            int i = threadIdx.x + j * blockDim.x;
            if (i < quads) stage_quad(v[j], i, norm, inv_rms, q, d);
        }
        return;
    }
    float ss = 0.0f;
    if (norm)
        for (int i = threadIdx.x; i < quads; i += blockDim.x) ss += squares(x_quad(x, i, cols));
    float inv_rms = norm ? rsqrtf(block_sum(ss) / cols + 1e-6f) : 1.0f;
    for (int i = threadIdx.x; i < quads; i += blockDim.x) stage_quad(x_quad(x, i, cols), i, norm, inv_rms, q, d);
}

// Rows (Rows a warp, consecutive) of y = W x̂, one launch of a chain.
template <Mode M, bool Planes, int Rows>
__global__ void matvec_kernel(Args a) {
    __shared__ __align__(16) int8_t xq_s[kMaxCols];
    __shared__ float xd_s[kMaxCols / 32];
    allow_next_kernel();
    int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    int row0 = (blockIdx.x * warps + threadIdx.x / 32) * Rows, units = a.cols / 32;
    bool mine = row0 < a.rows;
    UnitLoad<Planes> first[Rows];
    Unit xfirst{};
    if (M != kStage && mine && lane < units) {
#pragma unroll
        for (int r = 0; r < Rows; ++r) first[r].load(a, min(row0 + r, a.rows - 1), lane, true);
    }
    wait_for_previous_kernel();
    const int8_t *xq = a.xq;
    const float *xd = a.xd;
    if (M != kQ8x) {
        stage_x(a.x, a.norm, a.cols, xq_s, xd_s);
        __syncthreads();
        xq = xq_s, xd = xd_s;
    } else if (lane < units) {
        xfirst = x_unit(xq, xd, lane, true);
    }
    if (!mine) return;
    float acc[Rows] = {};
    for (int u = lane; u < units; u += 32) {
        UnitLoad<Planes> w[Rows];
        if (M == kStage || u != lane) {
#pragma unroll
            for (int r = 0; r < Rows; ++r) w[r].load(a, min(row0 + r, a.rows - 1), u);
        } else {
#pragma unroll
            for (int r = 0; r < Rows; ++r) w[r] = first[r];
        }
        Unit xu = M == kQ8x && u == lane ? xfirst : x_unit(xq, xd, u, M == kQ8x);
#pragma unroll
        for (int r = 0; r < Rows; ++r) acc[r] += dot(w[r].unpack(), xu);
    }
#pragma unroll
    for (int r = 0; r < Rows; ++r) {
        float s = warp_sum(acc[r]);
        if (lane == 0 && row0 + r < a.rows) a.y[row0 + r] = s;
    }
}

__global__ void empty_kernel(Args) {
    allow_next_kernel();
    wait_for_previous_kernel();
}

// x as Q8_1 in global memory, for q8x (one block: what the kernel before would leave).
__global__ void quantize_kernel(Args a, int8_t *xq, float *xd) {
    stage_x(a.x, a.norm, a.cols, xq, xd);
}

struct Shape {
    const char *name;
    int rows, cols;
    bool norm;
};

// The targets' decode ops (Qwen2.5-0.5B: d 896, 14 + 2 + 2 heads of 64, ffn 4864; SmolLM2-135M:
// d 576, 9 + 3 + 3 heads of 64, ffn 1536; Phi-3-mini: d 3072, ffn 8192 (its down has 8192
// columns, past kMaxCols: left out)).
const Shape kShapes[] = {
    {"qwen2.5 qkv", 1152, 896, true},   {"qwen2.5 attn_output", 896, 896, false},
    {"qwen2.5 gate_up", 9728, 896, true}, {"qwen2.5 ffn_down", 896, 4864, false},
    {"smollm2 qkv", 960, 576, true},    {"smollm2 attn_output", 576, 576, false},
    {"smollm2 gate_up", 3072, 576, true}, {"smollm2 ffn_down", 576, 1536, false},
    {"phi-3 qkv", 9216, 3072, true},    {"phi-3 gate_up", 16384, 3072, true},
};

// Launch i of the chain takes args[i % args.size()].
template <class Kernel>
float chain_us(Kernel kernel, int blocks, int threads, const std::vector<Args> &args,
               cudaStream_t stream) {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(threads);
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    cudaGraph_t graph;
    int n = std::max<int>(kChain, int(args.size()));  // every copy once a graph
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < n; ++i) CHECK(cudaLaunchKernelEx(&cfg, kernel, args[i % args.size()]));
    CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cudaGraphLaunch(exec, stream));  // warm: code, weights in L2 as far as they fit
    float best = 1e30f;
    for (int run = 0; run < 5; ++run) {
        CHECK(cudaEventRecord(start, stream));
        CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaEventRecord(stop, stream));
        CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        CHECK(cudaEventElapsedTime(&ms, start, stop));
        best = ms < best ? ms : best;
    }
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(graph));
    return best * 1000.0f / n;
}

// The host's y: x̂ rounded to Q8_1 as stage_x does (rsqrtf and the device's roundings aside:
// the check's tolerance covers a flipped rounding of x), integer dots in double.
std::vector<double> host_y(const Shape &s, const std::vector<int8_t> &wq,
                           const std::vector<float> &wd, const std::vector<float> &x,
                           const std::vector<float> &norm) {
    std::vector<float> v(x);
    if (s.norm) {
        double ss = 0.0;
        for (float e : x) ss += double(e) * e;
        float inv = float(1.0 / std::sqrt(ss / s.cols + 1e-6));
        for (int i = 0; i < s.cols; ++i) v[i] = x[i] * inv * norm[i];
    }
    std::vector<int> q(s.cols);
    std::vector<float> d(s.cols / 32);
    for (int u = 0; u < s.cols / 32; ++u) {
        float m = 0.0f;
        for (int j = 0; j < 32; ++j) m = std::fmax(m, std::fabs(v[32 * u + j]));
        d[u] = m / 127.0f;
        float inv = m > 0.0f ? 127.0f / m : 0.0f;
        for (int j = 0; j < 32; ++j) q[32 * u + j] = int(std::nearbyint(v[32 * u + j] * inv));
    }
    std::vector<double> y(s.rows);
    for (int r = 0; r < s.rows; ++r) {
        double acc = 0.0;
        for (int u = 0; u < s.cols / 32; ++u) {
            long dot = 0;
            for (int j = 0; j < 32; ++j) dot += long(wq[size_t(r) * s.cols + 32 * u + j]) * q[32 * u + j];
            acc += double(wd[size_t(r) * (s.cols / 32) + u]) * d[u] * dot;
        }
        y[r] = acc;
    }
    return y;
}

template <Mode M, bool Planes, int Rows>
void run_way(const Shape &s, const std::vector<Args> &args, cudaStream_t stream,
             const std::vector<double> &want, double scale, float weight_mb) {
    const Args &a = args[0];  // every launch writes the same y
    for (int warps : {4, 8}) {
        int threads = 32 * warps, blocks = (s.rows + warps * Rows - 1) / (warps * Rows);
        CHECK(cudaMemsetAsync(a.y, 0xFF, sizeof(float) * s.rows, stream));  // NaN until written
        float us = chain_us(matvec_kernel<M, Planes, Rows>, blocks, threads, args, stream);
        std::vector<float> y(s.rows);
        CHECK(cudaMemcpy(y.data(), a.y, sizeof(float) * s.rows, cudaMemcpyDeviceToHost));
        double worst = 0.0;
        for (int r = 0; r < s.rows; ++r) {
            double e = std::fabs(y[r] - want[r]) / scale;
            if (!(e <= worst)) worst = e;  // NaN (a row never written) sticks; fmax would drop it
        }
        bool ok = worst < 5e-3;  // one x value rounded the other way moves a row by < 1e-3 of max |y|
        std::printf("  %-5s %-11s %d row%s a warp, %d warps: %7.2f us %7.0f GB/s%s\n",
                    kModeNames[M], Planes ? "planes" : "interleaved", Rows, Rows > 1 ? "s" : " ",
                    warps, us, weight_mb / us * 1e3,
                    ok ? "" : "   WRONG (max error / max |y| above 5e-3)");
    }
}

template <Mode M, bool Planes>
void run_rows(const Shape &s, const std::vector<Args> &args, cudaStream_t stream,
              const std::vector<double> &want, double scale, float weight_mb) {
    run_way<M, Planes, 1>(s, args, stream, want, scale, weight_mb);
    run_way<M, Planes, 2>(s, args, stream, want, scale, weight_mb);
    run_way<M, Planes, 4>(s, args, stream, want, scale, weight_mb);
}

}  // namespace

int main() {
    int sms = 0;
    if (cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0); e != cudaSuccess) {
        std::fprintf(stderr, "matvec_latency: no GPU (%s)\n", cudaGetErrorString(e));
        return 1;
    }
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    std::printf("%d SMs; us a launch in a graph of %d launches or more, each overlapping the one "
                "before\n", sms, kChain);
    std::printf("empty kernel, %d blocks of 256 threads: %.2f us\n", sms,
                chain_us(empty_kernel, sms, 256, std::vector<Args>(1), stream));
    uint32_t seed = 12345;
    auto rand01 = [&seed] {  // xorshift: the same data on every run
        seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
        return (seed & 0xFFFFFF) / float(0x1000000);
    };
    for (const Shape &s : kShapes) {
        int units = s.cols / 32;
        std::vector<int8_t> wq(size_t(s.rows) * s.cols);
        std::vector<float> wd(size_t(s.rows) * units), x(s.cols), norm(s.cols);
        std::vector<__half> wd_h(wd.size());
        std::vector<uint8_t> blocks(size_t(s.rows) * units * kBlockBytes);
        for (auto &q : wq) q = int8_t(int(rand01() * 255.0f) - 127);
        for (size_t i = 0; i < wd.size(); ++i) {
            wd_h[i] = __float2half(0.001f + 0.01f * rand01());
            wd[i] = __half2float(wd_h[i]);
        }
        for (auto &e : x) e = 4.0f * rand01() - 2.0f;
        for (auto &e : norm) e = 0.5f + rand01();
        for (size_t b = 0; b < wd.size(); ++b) {  // the GGUF's blocks: scale, then 32 quants
            std::memcpy(&blocks[b * kBlockBytes], &wd_h[b], 2);
            std::memcpy(&blocks[b * kBlockBytes + 2], &wq[b * 32], 32);
        }
        std::vector<double> want = host_y(s, wq, wd, x, norm);
        double scale = 0.0;  // a row's typical size: max |y|
        for (double v : want) scale = std::fmax(scale, std::fabs(v));
        Args a{};
        a.rows = s.rows, a.cols = s.cols;
        std::vector<void *> allocations;
        auto device = [&allocations](auto **p, size_t bytes) {
            CHECK(cudaMalloc(p, bytes));
            allocations.push_back(*p);
        };
        uint8_t *w;
        int8_t *dwq, *xq;
        __half *dwd;
        float *dx, *dnorm, *xd, *y;
        size_t copies = (size_t(128) << 20) / blocks.size() + 1;  // past the 60 MB L2
        device(&w, blocks.size() * copies + 16);  // the last block's chunks stay in
        device(&dwq, wq.size() * copies);
        device(&dwd, wd_h.size() * sizeof(__half) * copies);
        device(&dx, x.size() * sizeof(float));
        device(&dnorm, norm.size() * sizeof(float));
        device(&xq, s.cols);
        device(&xd, units * sizeof(float));
        device(&y, s.rows * sizeof(float));
        for (size_t c = 0; c < copies; ++c) {
            CHECK(cudaMemcpy(w + c * blocks.size(), blocks.data(), blocks.size(),
                             cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy(dwq + c * wq.size(), wq.data(), wq.size(), cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy(dwd + c * wd_h.size(), wd_h.data(), wd_h.size() * sizeof(__half),
                             cudaMemcpyHostToDevice));
        }
        CHECK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dnorm, norm.data(), norm.size() * sizeof(float), cudaMemcpyHostToDevice));
        a.w = w, a.wq = dwq, a.wd = dwd, a.x = dx, a.norm = s.norm ? dnorm : nullptr;
        a.xq = xq, a.xd = xd, a.y = y;
        quantize_kernel<<<1, 320>>>(a, xq, xd);  // whole warps, 16 values a thread
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
        std::vector<Args> args(copies, a);
        for (size_t c = 0; c < args.size(); ++c) {
            args[c].w = w + c * blocks.size();
            args[c].wq = dwq + c * wq.size();
            args[c].wd = dwd + c * wd_h.size();
        }
        float weight_mb = float(blocks.size()) / 1e6f;
        std::printf("%s: %d x %d%s, %.2f MB of weights (%.2f us at 4 TB/s)\n", s.name, s.rows,
                    s.cols, s.norm ? ", rmsnorm'd x" : "", weight_mb, weight_mb / 4e6f * 1e6f);
        run_rows<kStage, false>(s, args, stream, want, scale, weight_mb);
        run_rows<kStage, true>(s, args, stream, want, scale, weight_mb);
        run_rows<kAhead, false>(s, args, stream, want, scale, weight_mb);
        run_rows<kAhead, true>(s, args, stream, want, scale, weight_mb);
        run_rows<kQ8x, false>(s, args, stream, want, scale, weight_mb);
        run_rows<kQ8x, true>(s, args, stream, want, scale, weight_mb);
        for (void *p : allocations) CHECK(cudaFree(p));
    }
    return 0;
}
