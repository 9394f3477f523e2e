// Hopper's warpgroup matrix multiply (wgmma, sm_90a): four warps multiply tiles that sit in
// shared memory into F32 accumulators held in their registers. Only the pieces the dense
// prefill product (matmul_dense.cu) and the experts' (moe.cu) use: both operands K-major in
// the 128-byte swizzle, steps of 64 x N x 16. Compiled only where the target has the instructions
// (ORCD_HAS_WGMMA, the sm_90a build); elsewhere the callers take mma.sync.
#pragma once
#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ORCD_HAS_WGMMA 1
#else
#define ORCD_HAS_WGMMA 0
#endif

namespace orcd {

// A tile's rows are 64 halves (128 bytes) of K; the 16-byte chunk c of row r sits at chunk
// c ^ (r % 8) of its row (the 128-byte swizzle), in atoms of 8 rows (1,024 bytes, aligned so).
__host__ __device__ constexpr uint32_t swizzled_chunk(int row, int chunk) {
    return uint32_t(row * 128 + ((chunk ^ (row % 8)) * 16));
}

// The descriptor of such a tile at shared address `at`: 8-row atoms 1,024 bytes apart (the
// stride byte offset), 128-byte swizzle. The k-th 16 columns start 32 k bytes further.
__device__ __forceinline__ uint64_t swizzled_tile(uint32_t at) {
    return uint64_t((at & 0x3FFFF) >> 4) | uint64_t(1) << 16 | uint64_t(1024 >> 4) << 32 |
           uint64_t(1) << 62;
}

// Each is empty where the target lacks the instructions (!ORCD_HAS_WGMMA): callers take
// mma.sync there.
// Before a warpgroup's first wgmma that reads accumulators its threads wrote.
__device__ __forceinline__ void wgmma_fence() {
#if ORCD_HAS_WGMMA
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if ORCD_HAS_WGMMA
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}
// Until at most Pending committed groups of the warpgroup are still running.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
#if ORCD_HAS_WGMMA
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(Pending) : "memory");
#endif
}
// Shared memory written through the ordinary path (st.shared, cp.async) made visible to the
// async proxy that wgmma reads through.
__device__ __forceinline__ void shared_to_async_proxy() {
#if ORCD_HAS_WGMMA
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

// The registers a wgmma wrote, pinned in place until read (the compiler sees no write).
template <int N>
__device__ __forceinline__ void hold(float (&d)[N]) {
#pragma unroll
    for (float &v : d) asm volatile("" : "+f"(v)::"memory");
}

// d = A B^T + (scale_d ? d : 0): A 64 x 16 (descriptor a), B N x 16 (descriptor b), both
// K-major; d a thread's N / 2 of the 64 x N F32 tile: warp w of the group, lane l: d[4 j + h]
// at row 16 w + l / 4 + 8 (h / 2), column 8 j + 2 (l % 4) + h % 2 (mma.sync m16n8's layout, per
// 8 columns). N: 64 (the experts' tiles of tokens, moe.cu), 96 or 128.
template <int N>
__device__ __forceinline__ void wgmma_m64k16(float (&d)[N / 2], uint64_t a, uint64_t b,
                                             int scale_d);

template <>
__device__ __forceinline__ void wgmma_m64k16<64>(float (&d)[32], uint64_t a, uint64_t b,
                                                int scale_d) {
#if ORCD_HAS_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "%32, %33, p, 1, 1, 0, 0;\n}"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
          "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
          "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
          "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
          "+f"(d[30]), "+f"(d[31])
        : "l"(a), "l"(b), "r"(scale_d));
#else
    (void)d, (void)a, (void)b, (void)scale_d;
#endif
}

template <>
__device__ __forceinline__ void wgmma_m64k16<96>(float (&d)[48], uint64_t a, uint64_t b,
                                                 int scale_d) {
#if ORCD_HAS_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n96k16.f32.f16.f16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, "
        "%48, %49, p, 1, 1, 0, 0;\n}"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
          "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
          "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
          "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
          "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
          "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
        : "l"(a), "l"(b), "r"(scale_d));
#else
    (void)d, (void)a, (void)b, (void)scale_d;
#endif
}

template <>
__device__ __forceinline__ void wgmma_m64k16<128>(float (&d)[64], uint64_t a, uint64_t b,
                                                 int scale_d) {
#if ORCD_HAS_WGMMA
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "%64, %65, p, 1, 1, 0, 0;\n}"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
          "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
          "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
          "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
          "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
          "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]),
          "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
          "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "r"(scale_d));
#else
    (void)d, (void)a, (void)b, (void)scale_d;
#endif
}

}  // namespace orcd
