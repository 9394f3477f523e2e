// The weight formats as stored in GGUF, in one place: per ggml type a block struct with
// ggml's exact byte layout (ggml-common.h) and a format trait whose `run16` decodes 16
// consecutive values of a row as d * q (+ m), and, for the quantized formats, whose `Unit`
// loads 32 values (unit u of a row: values 32u..32u+31) and dots them with Q8_1 activations
// in integers (dp4a): UnitIn<Mem> reads the row from global or shared memory, Unit from global.
// matvec, matmul and embed are templated over these traits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "common.cuh"

namespace orcd {

enum GgmlType : int {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_BF16 = 30,
    GGML_MXFP4 = 39,
};

struct block_q8_0 { __half d; int8_t qs[32]; };
struct block_q4_0 { __half d; uint8_t qs[16]; };
struct block_q4_1 { __half d, m; uint8_t qs[16]; };
struct block_q5_0 { __half d; uint8_t qh[4]; uint8_t qs[16]; };
struct block_q5_1 { __half d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct block_q4_K { __half d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct block_q5_K { __half d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; __half d; };
struct block_mxfp4 { uint8_t e; uint8_t qs[16]; };

// Activations as the integer matvec takes them (llama.cpp's Q8_1 idea, our layout): per 32
// values x ~ d * q with d = max|x| / 127 and int8 q, plus the integer sum of q, which carries
// the offsets and mins of the weight formats (orcd.quant.activations).
struct block_q8_1_scale { float d; int sum; };

// 32 consecutive activations: q as 8 words (value 4k + j in byte j of word k), d and sum.
struct XBlock {
    uint32_t q[8];
    block_q8_1_scale s;
};

// d = max|x| / 127 and q = rint(x * (1 / d)), each step correctly rounded (as
// orcd.quant.activations computes them), saturated to +-127; d = 0 (all zero) gives q = 0.
__device__ __forceinline__ float q8_1_scale(float amax) { return __fdiv_rn(amax, 127.0f); }
__device__ __forceinline__ float q8_1_inverse(float d) { return d > 0.0f ? __frcp_rn(d) : 0.0f; }
__device__ __forceinline__ int q8_1_value(float x, float inv) {
    int q = __float2int_rn(__fmul_rn(x, inv));
    return q < -127 ? -127 : q > 127 ? 127 : q;
}

__device__ __forceinline__ XBlock quantize_block_q8_1(const float (&v)[32]) {
    float amax = 0.0f;
    for (float e : v) amax = fmaxf(amax, fabsf(e));
    float d = q8_1_scale(amax), inv = q8_1_inverse(d);
    XBlock b = {};
    for (int k = 0; k < 32; ++k) {
        int q = q8_1_value(v[k], inv);
        b.s.sum += q;
        b.q[k / 4] |= (uint32_t(q) & 0xFFu) << 8 * (k % 4);
    }
    b.s.d = d;
    return b;
}

// Every kernel works on runs of 16 consecutive values of a row; rows are a whole number of runs.
constexpr int kRun = 16;

// Little-endian words of the 16 bytes at p, whose guaranteed alignment is Align.
template <int Align>
__device__ __forceinline__ void load16(const uint8_t *p, uint32_t (&w)[4]) {
    if constexpr (Align % 16 == 0) {
        uint4 v = __ldg(reinterpret_cast<const uint4 *>(p));
        w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    } else if constexpr (Align % 4 == 0) {
        for (int i = 0; i < 4; ++i) w[i] = __ldg(reinterpret_cast<const uint32_t *>(p) + i);
    } else {
        // Aligned words around p, funnel-shifted into place. Every word read holds a byte of
        // the run (so no read leaves the allocation's 4-byte granules): an aligned p reads
        // q[3] again, unused, instead of q[4], which keeps the loads free of branches.
        uintptr_t a = reinterpret_cast<uintptr_t>(p);
        const uint32_t *q = reinterpret_cast<const uint32_t *>(a & ~uintptr_t(3));
        int shift = int(a & 3) * 8;
        uint32_t r[5];
        for (int i = 0; i < 4; ++i) r[i] = __ldg(q + i);
        r[4] = __ldg(q + (shift ? 4 : 3));
        for (int i = 0; i < 4; ++i) w[i] = __funnelshift_r(r[i], r[i + 1], shift);
    }
}

// Where a Unit reads its weights from: global memory through the read-only path (__ldg), or
// shared memory, where the persistent decode kernel stages them (decode_persistent.cu) at the
// same alignment modulo 16 as in global memory, so that every load below stays valid there.
struct FromGlobal {
    template <class T>
    __device__ __forceinline__ static T ld(const T *p) { return __ldg(p); }
};
struct FromShared {
    template <class T>
    __device__ __forceinline__ static T ld(const T *p) { return *p; }
};

// The 4N bytes at p, whose guaranteed alignment is Align, read as 16-byte loads of the
// aligned chunks that hold them (one sector each, the fewest load instructions); `words`
// then moves them into place: two selects per word shift by whole words (static register
// indices), a funnel shift by the bytes left. A chunk is read only if it holds one of the 4N
// bytes, so no read leaves the allocation's 16-byte granules. Loading and unpacking are apart
// so that a kernel can issue every load of a step before it uses the first.
template <int N, int Align, class Mem = FromGlobal>
struct Bytes {
    static constexpr int chunks = Align % 16 == 0 ? N / 4 : (16 - Align + 4 * N + 15) / 16;
    uint32_t v[4 * chunks];
    int off;

    __device__ __forceinline__ void load(const uint8_t *p) {
        uintptr_t a = reinterpret_cast<uintptr_t>(p);
        const uint4 *c = reinterpret_cast<const uint4 *>(a & ~uintptr_t(15));
        off = Align % 16 == 0 ? 0 : int(a & 15);
        for (int i = 0; i < chunks; ++i) {
            uint4 t = 16 * i < off + 4 * N ? Mem::ld(c + i) : make_uint4(0, 0, 0, 0);
            v[4 * i] = t.x, v[4 * i + 1] = t.y, v[4 * i + 2] = t.z, v[4 * i + 3] = t.w;
        }
    }

    __device__ __forceinline__ void words(uint32_t (&w)[N]) const {
        constexpr int n = 4 * chunks;
        uint32_t r[n + 3];
        for (int j = 0; j < n + 3; ++j) r[j] = j < n ? v[j] : 0u;
        if constexpr (Align % 16 != 0) {
            for (int j = 0; j < n; ++j) r[j] = off & 8 ? r[j + 2] : r[j];
            for (int j = 0; j < n; ++j) r[j] = off & 4 ? r[j + 1] : r[j];
        }
        for (int k = 0; k < N; ++k)
            w[k] = Align % 4 == 0 ? r[k] : __funnelshift_r(r[k], r[k + 1], 8 * (off & 3));
    }
};

// The 16 bits at p (2-byte aligned), as raw bits: converted where they are used.
template <class Mem = FromGlobal>
__device__ __forceinline__ uint32_t bits16(const void *p) {
    return Mem::ld(reinterpret_cast<const uint16_t *>(p));
}

__device__ __forceinline__ float half_at(const __half *p) { return __half2float(__ldg(p)); }

// The fp16 in the low (Shift 0) or high (Shift 16) half of a word.
template <int Shift>
__device__ __forceinline__ float half_in(uint32_t w) {
    __half_raw r;
    r.x = static_cast<unsigned short>(w >> Shift);
    return __half2float(__half(r));
}

// sum_k q_k x_k over the 32 values of a block whose weights are the unsigned 4- or 5-bit
// values of lo (values 0-15: word k holds 4k..4k+3) and hi (values 16-31).
__device__ __forceinline__ int dot_lo_hi(const uint32_t (&lo)[4], const uint32_t (&hi)[4],
                                         const XBlock &x) {
    int dot = 0;
    for (int k = 0; k < 4; ++k) {
        dot = __dp4a(int(lo[k]), int(x.q[k]), dot);
        dot = __dp4a(int(hi[k]), int(x.q[k + 4]), dot);
    }
    return dot;
}

// Q4_1/Q5_1: sum (d q + m) x = dx (d dot + m sum), with d and m the fp16 halves of dm.
__device__ __forceinline__ float affine_dot(uint32_t dm, int dot, block_q8_1_scale x) {
    return x.d * (half_in<0>(dm) * float(dot) + half_in<16>(dm) * float(x.sum));
}

// sum_k q_k x_k with the 32 weights q of a unit as 8 words of int8 (or unsigned < 128).
__device__ __forceinline__ int dot_words(const uint32_t (&q)[8], const XBlock &x) {
    int dot = 0;
    for (int k = 0; k < 8; ++k) dot = __dp4a(int(q[k]), int(x.q[k]), dot);
    return dot;
}

// Byte j of n minus offset as a float, exact: one prmt puts the byte in the mantissa of 2^23.
__device__ __forceinline__ float byte_minus(uint32_t n, int j, float offset) {
    return __uint_as_float(__byte_perm(n, 0x4B000000u, 0x7440u | j)) - (8388608.0f + offset);
}

// q[k] = byte k of the 16 bytes in n, minus offset.
__device__ __forceinline__ void bytes_minus(const uint32_t (&n)[4], float offset, float (&q)[16]) {
    for (int k = 0; k < 16; ++k) q[k] = byte_minus(n[k / 4], k % 4, offset);
}

// The 4-bit values of four bytes: low nibbles (shift 0) or high nibbles (shift 4).
__device__ __forceinline__ uint32_t nibbles(uint32_t w, int shift) {
    return (w >> shift) & 0x0F0F0F0Fu;
}

// Bit j of the 4-bit h moved to bit 0 of byte j (the shifted copies never overlap).
__device__ __forceinline__ uint32_t spread_bits(uint32_t h) {
    return (h * 0x00204081u) & 0x01010101u;
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of a Q4_K/Q5_K block.
// Sub-blocks 0-3 keep them in bytes j and j + 4; 4-7 split them over bytes j + 4 (low 4 bits)
// and the top 2 bits of bytes j - 4 and j. Selects, not branches: the loop stays one block.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, float &sc, float &m) {
    bool low = j < 4;
    uint32_t a = __ldg(q + j), b = __ldg(q + j + 4), c = __ldg(q + (low ? j : j - 4));
    sc = float(low ? a & 63 : (b & 0xF) | (c >> 6) << 4);
    m = float(low ? b & 63 : (b >> 4) | (a >> 6) << 4);
}

// The same from the 12 scale bytes held in three words: byte j % 4 of words 0, 1, 2 is
// scales[j % 4], scales[4 + j % 4], scales[8 + j % 4].
__device__ __forceinline__ void scale_min_k4(int j, const uint32_t *q, int &sc, int &m) {
    int sh = 8 * (j % 4);
    uint32_t a = q[0] >> sh & 0xFF, b = q[1] >> sh & 0xFF, c = q[2] >> sh & 0xFF;
    bool low = j < 4;
    sc = int(low ? a & 63 : (c & 0xF) | (a >> 6) << 4);
    m = int(low ? b & 63 : (c >> 4) | (b >> 6) << 4);
}

namespace fmt {

// A run of 16 values as value_k = d * q_k (+ m where `affine`): kernels that only need dot
// products multiply by d once per run instead of once per value.
struct RunScale {
    float d, m;
};

struct F32 {
    static constexpr int type = GGML_F32, block_size = 1, type_size = 4;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = false;  // weights meet F32 activations
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const float4 *p = reinterpret_cast<const float4 *>(row) + i0 / 4;
        for (int i = 0; i < 4; ++i) {
            float4 f = __ldg(p + i);
            q[4 * i] = f.x, q[4 * i + 1] = f.y, q[4 * i + 2] = f.z, q[4 * i + 3] = f.w;
        }
        return {1.0f, 0.0f};
    }
};

struct F16 {
    static constexpr int type = GGML_F16, block_size = 1, type_size = 2;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = false;  // weights meet F32 activations
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        for (int h = 0; h < 2; ++h) {
            uint32_t w[4];
            load16<16>(row + 2 * (i0 + 8 * h), w);
            for (int i = 0; i < 4; ++i) {
                float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&w[i]));
                q[8 * h + 2 * i] = f.x, q[8 * h + 2 * i + 1] = f.y;
            }
        }
        return {1.0f, 0.0f};
    }
};

struct BF16 {
    static constexpr int type = GGML_BF16, block_size = 1, type_size = 2;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = false;  // weights meet F32 activations
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        for (int h = 0; h < 2; ++h) {
            uint32_t w[4];
            load16<16>(row + 2 * (i0 + 8 * h), w);
            for (int i = 0; i < 4; ++i) {  // bf16 is the top half of an f32
                q[8 * h + 2 * i] = __uint_as_float(w[i] << 16);
                q[8 * h + 2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
            }
        }
        return {1.0f, 0.0f};
    }
};

struct Q8_0 {
    static constexpr int type = GGML_Q8_0, block_size = 32, type_size = 34;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q8_0 *b = reinterpret_cast<const block_q8_0 *>(row) + i0 / 32;
        uint32_t w[4];
        load16<2>(reinterpret_cast<const uint8_t *>(b->qs) + i0 % 32, w);
        for (uint32_t &n : w) n ^= 0x80808080u;  // int8 + 128
        bytes_minus(w, 128.0f, q);
        return {half_at(&b->d), 0.0f};
    }
    template <class Mem>
    struct UnitIn {
        Bytes<8, 2, Mem> qs;
        uint32_t d;
        __device__ void load(const uint8_t *row, int u) {
            const block_q8_0 *b = reinterpret_cast<const block_q8_0 *>(row) + u;
            qs.load(reinterpret_cast<const uint8_t *>(b->qs));
            d = bits16<Mem>(&b->d);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t q[8];
            qs.words(q);
            return half_in<0>(d) * x.s.d * float(dot_words(q, x));
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

// Q4_0, Q4_1, Q5_0, Q5_1, MXFP4: byte j of qs holds value j (low nibble) and j + 16 (high).
struct Q4_0 {
    static constexpr int type = GGML_Q4_0, block_size = 32, type_size = 18;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q4_0 *b = reinterpret_cast<const block_q4_0 *>(row) + i0 / 32;
        int shift = i0 % 32 ? 4 : 0;
        uint32_t w[4];
        load16<2>(b->qs, w);
        for (uint32_t &n : w) n = nibbles(n, shift);
        bytes_minus(w, 8.0f, q);
        return {half_at(&b->d), 0.0f};
    }
    // sum (q - 8) x = sum q x - 8 sum x: exact in integers.
    template <class Mem>
    struct UnitIn {
        Bytes<4, 2, Mem> qs;
        uint32_t d;
        __device__ void load(const uint8_t *row, int u) {
            const block_q4_0 *b = reinterpret_cast<const block_q4_0 *>(row) + u;
            qs.load(b->qs);
            d = bits16<Mem>(&b->d);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t w[4], lo[4], hi[4];
            qs.words(w);
            for (int k = 0; k < 4; ++k) lo[k] = nibbles(w[k], 0), hi[k] = nibbles(w[k], 4);
            return half_in<0>(d) * x.s.d * float(dot_lo_hi(lo, hi, x) - 8 * x.s.sum);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

struct Q4_1 {
    static constexpr int type = GGML_Q4_1, block_size = 32, type_size = 20;
    static constexpr bool affine = true;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q4_1 *b = reinterpret_cast<const block_q4_1 *>(row) + i0 / 32;
        int shift = i0 % 32 ? 4 : 0;
        uint32_t w[4];
        load16<4>(b->qs, w);
        for (uint32_t &n : w) n = nibbles(n, shift);
        bytes_minus(w, 0.0f, q);
        return {half_at(&b->d), half_at(&b->m)};
    }
    // sum (d q + m) x = d sum q x + m sum x.
    template <class Mem>
    struct UnitIn {
        Bytes<4, 4, Mem> qs;
        uint32_t dm;
        __device__ void load(const uint8_t *row, int u) {
            const block_q4_1 *b = reinterpret_cast<const block_q4_1 *>(row) + u;
            qs.load(b->qs);
            dm = Mem::ld(reinterpret_cast<const uint32_t *>(b));
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t w[4], lo[4], hi[4];
            qs.words(w);
            for (int k = 0; k < 4; ++k) lo[k] = nibbles(w[k], 0), hi[k] = nibbles(w[k], 4);
            return affine_dot(dm, dot_lo_hi(lo, hi, x), x.s);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

// The fifth bit of value j is bit j of the 32-bit qh.
template <class Mem = FromGlobal>
__device__ __forceinline__ uint32_t qh32(const uint8_t *qh) {
    const uint16_t *h = reinterpret_cast<const uint16_t *>(qh);
    return uint32_t(Mem::ld(h)) | uint32_t(Mem::ld(h + 1)) << 16;
}

// The 5-bit values of Q5_0/Q5_1 from the nibbles w and the fifth bits h: values 4k..4k+3 in
// lo[k], 16 + 4k.. in hi[k].
__device__ __forceinline__ void fifth_bits(uint32_t h, const uint32_t (&w)[4], uint32_t (&lo)[4],
                                           uint32_t (&hi)[4]) {
    for (int k = 0; k < 4; ++k) {
        lo[k] = nibbles(w[k], 0) | spread_bits(h >> 4 * k & 0xFu) << 4;
        hi[k] = nibbles(w[k], 4) | spread_bits(h >> (16 + 4 * k) & 0xFu) << 4;
    }
}

struct Q5_0 {
    static constexpr int type = GGML_Q5_0, block_size = 32, type_size = 22;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q5_0 *b = reinterpret_cast<const block_q5_0 *>(row) + i0 / 32;
        int o = i0 % 32, shift = o ? 4 : 0;
        uint32_t hi = qh32(b->qh) >> o, w[4];
        load16<2>(b->qs, w);
        for (int i = 0; i < 4; ++i)
            w[i] = nibbles(w[i], shift) | spread_bits((hi >> 4 * i) & 0xFu) << 4;
        bytes_minus(w, 16.0f, q);
        return {half_at(&b->d), 0.0f};
    }
    template <class Mem>
    struct UnitIn {
        Bytes<4, 2, Mem> qs;
        uint32_t d, qh;
        __device__ void load(const uint8_t *row, int u) {
            const block_q5_0 *b = reinterpret_cast<const block_q5_0 *>(row) + u;
            qs.load(b->qs);
            d = bits16<Mem>(&b->d);
            qh = qh32<Mem>(b->qh);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t w[4], lo[4], hi[4];
            qs.words(w);
            fifth_bits(qh, w, lo, hi);
            return half_in<0>(d) * x.s.d * float(dot_lo_hi(lo, hi, x) - 16 * x.s.sum);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

struct Q5_1 {
    static constexpr int type = GGML_Q5_1, block_size = 32, type_size = 24;
    static constexpr bool affine = true;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q5_1 *b = reinterpret_cast<const block_q5_1 *>(row) + i0 / 32;
        int o = i0 % 32, shift = o ? 4 : 0;
        uint32_t hi = qh32(b->qh) >> o, w[4];
        load16<4>(b->qs, w);
        for (int i = 0; i < 4; ++i)
            w[i] = nibbles(w[i], shift) | spread_bits((hi >> 4 * i) & 0xFu) << 4;
        bytes_minus(w, 0.0f, q);
        return {half_at(&b->d), half_at(&b->m)};
    }
    template <class Mem>
    struct UnitIn {
        Bytes<4, 8, Mem> qs;
        uint32_t dm, qh;
        __device__ void load(const uint8_t *row, int u) {
            const block_q5_1 *b = reinterpret_cast<const block_q5_1 *>(row) + u;
            qs.load(b->qs);
            uint2 head = Mem::ld(reinterpret_cast<const uint2 *>(b));  // d, m, qh
            dm = head.x, qh = head.y;
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t w[4], lo[4], hi[4];
            qs.words(w);
            fifth_bits(qh, w, lo, hi);
            return affine_dot(dm, dot_lo_hi(lo, hi, x), x.s);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

// Q4_K/Q5_K: 8 sub-blocks of 32 values, value = d * sc * q - dmin * m with a 6-bit scale and
// min per sub-block; sub-block s takes the low (even s) or high (odd s) nibbles of
// qs[32 * (s / 2) ...].
__device__ __forceinline__ RunScale scale_k(const __half *d, const __half *dmin,
                                            const uint8_t *scales, int s) {
    float sc, m;
    scale_min_k4(s, scales, sc, m);
    return {half_at(d) * sc, -__fmul_rn(half_at(dmin), m)};
}

// Q4_K/Q5_K's sub-block s from its integer dot: d sc dx dot - dmin m dx sum (head: the block's
// first 16 bytes, d, dmin and the scales). sc dot and m sum stay below 2^24: exact as floats.
__device__ __forceinline__ float dot_k(const uint32_t (&head)[4], int s, int dot,
                                       block_q8_1_scale x) {
    int sc, m;
    scale_min_k4(s, head + 1, sc, m);
    float d = half_in<0>(head[0]), dmin = half_in<16>(head[0]);
    return x.d * (d * float(sc * dot) - dmin * float(m * x.sum));
}

struct Q4_K {
    static constexpr int type = GGML_Q4_K, block_size = 256, type_size = 144;
    static constexpr bool affine = true;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q4_K *b = reinterpret_cast<const block_q4_K *>(row) + i0 / 256;
        int o = i0 % 256, s = o / 32, l = o % 32;
        uint32_t w[4];
        load16<16>(b->qs + 32 * (s / 2) + l, w);
        for (uint32_t &n : w) n = nibbles(n, 4 * (s % 2));
        bytes_minus(w, 0.0f, q);
        return scale_k(&b->d, &b->dmin, b->scales, s);
    }
    // Unit u is sub-block u % 8 of block u / 8: d sc sum q x - dmin m sum x.
    template <class Mem>
    struct UnitIn {
        Bytes<4, 16, Mem> head;  // d, dmin, scales
        Bytes<8, 16, Mem> qs;
        int s;
        __device__ void load(const uint8_t *row, int u) {
            const block_q4_K *b = reinterpret_cast<const block_q4_K *>(row) + u / 8;
            s = u % 8;
            head.load(reinterpret_cast<const uint8_t *>(b));
            qs.load(b->qs + 32 * (s / 2));
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t q[8];
            qs.words(q);
            for (uint32_t &n : q) n = nibbles(n, 4 * (s % 2));
            return dot_k(head.v, s, dot_words(q, x), x.s);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

struct Q5_K {
    static constexpr int type = GGML_Q5_K, block_size = 256, type_size = 176;
    static constexpr bool affine = true;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q5_K *b = reinterpret_cast<const block_q5_K *>(row) + i0 / 256;
        int o = i0 % 256, s = o / 32, l = o % 32;
        uint32_t w[4], h[4];
        load16<16>(b->qs + 32 * (s / 2) + l, w);
        load16<16>(b->qh + l, h);  // bit s of qh[l] is the fifth bit of value l of sub-block s
        for (int i = 0; i < 4; ++i)
            w[i] = nibbles(w[i], 4 * (s % 2)) | ((h[i] >> s) & 0x01010101u) << 4;
        bytes_minus(w, 0.0f, q);
        return scale_k(&b->d, &b->dmin, b->scales, s);
    }
    template <class Mem>
    struct UnitIn {
        Bytes<4, 16, Mem> head;
        Bytes<8, 16, Mem> qs, qh;
        int s;
        __device__ void load(const uint8_t *row, int u) {
            const block_q5_K *b = reinterpret_cast<const block_q5_K *>(row) + u / 8;
            s = u % 8;
            head.load(reinterpret_cast<const uint8_t *>(b));
            qs.load(b->qs + 32 * (s / 2));
            qh.load(b->qh);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t q[8], h[8];
            qs.words(q);
            qh.words(h);
            for (int k = 0; k < 8; ++k)
                q[k] = nibbles(q[k], 4 * (s % 2)) | (h[k] >> s & 0x01010101u) << 4;
            return dot_k(head.v, s, dot_words(q, x), x.s);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

// Q6_K: two halves of 128 values; quarter t of a half takes the low (t < 2) or high nibbles
// of ql[32 * (t % 2) ...], bits 2t..2t+1 of qh[...], and one int8 scale per 16 values.
struct Q6_K {
    static constexpr int type = GGML_Q6_K, block_size = 256, type_size = 210;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = true;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_q6_K *b = reinterpret_cast<const block_q6_K *>(row) + i0 / 256;
        int o = i0 % 256, half = o / 128, t = o % 128 / 32, l = o % 32;
        uint32_t w[4], h[4];
        load16<2>(b->ql + 64 * half + 32 * (t % 2) + l, w);
        load16<2>(b->qh + 32 * half + l, h);
        for (int i = 0; i < 4; ++i)
            w[i] = nibbles(w[i], 4 * (t / 2)) | ((h[i] >> (2 * t)) & 0x03030303u) << 4;
        bytes_minus(w, 32.0f, q);
        return {half_at(&b->d) * float(__ldg(&b->scales[8 * half + l / 16 + 2 * t])), 0.0f};
    }
    // Unit u is quarter t of half h of block u / 8; its values are q - 32 (made signed bytes:
    // q + 128 - 32 has no borrow, then the top bit flips back), scaled per 16 values.
    template <class Mem>
    struct UnitIn {
        Bytes<8, 2, Mem> ql, qh;
        uint32_t sc, d;  // the quarter's two int8 scales; d
        int t;
        __device__ void load(const uint8_t *row, int u) {
            const block_q6_K *b = reinterpret_cast<const block_q6_K *>(row) + u / 8;
            int half = u % 8 / 4;
            t = u % 4;
            ql.load(b->ql + 64 * half + 32 * (t % 2));
            qh.load(b->qh + 32 * half);
            sc = bits16<Mem>(b->scales + 8 * half + 2 * t);
            d = bits16<Mem>(&b->d);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t q[8], h[8];
            ql.words(q);
            qh.words(h);
            for (int k = 0; k < 8; ++k) {
                uint32_t v = nibbles(q[k], 4 * (t / 2)) | (h[k] >> 2 * t & 0x03030303u) << 4;
                q[k] = ((v | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
            }
            int dot0 = 0, dot1 = 0;
            for (int k = 0; k < 4; ++k) dot0 = __dp4a(int(q[k]), int(x.q[k]), dot0);
            for (int k = 4; k < 8; ++k) dot1 = __dp4a(int(q[k]), int(x.q[k]), dot1);
            int sum = int(int8_t(sc & 0xFF)) * dot0 + int(int8_t(sc >> 8)) * dot1;  // < 2^24
            return half_in<0>(d) * x.s.d * float(sum);
        }
    };
    using Unit = UnitIn<FromGlobal>;
};

// MXFP4: E2M1 values with an E8M0 block scale. ggml keeps the E2M1 values doubled
// (0, 1, 2, 3, 4, 6, 8, 12, then the same negated) and halves the scale: 2^(e - 128),
// subnormal below e = 2.
// Four codes (one per byte of c) -> their doubled values + 12, in bytes ordered as codes
// 0, 2, 1, 3: prmt looks up the 8 positive and the 8 negative entries, and a third prmt
// picks by the sign bit. Adding 12 keeps values unsigned; code 8 then gives 12 - 12 = +0.
__device__ __forceinline__ uint32_t e2m1_plus_12(uint32_t c) {
    uint32_t low = c & 0x07070707u, sign = c & 0x08080808u;
    uint32_t sel = low | low >> 12;  // selector nibbles: codes 0, 2, 1, 3
    uint32_t pos = __byte_perm(0x0F0E0D0Cu, 0x18141210u, sel);
    uint32_t neg = __byte_perm(0x090A0B0Cu, 0x00040608u, sel);
    return __byte_perm(pos, neg, 0x3210u | sign >> 1 | sign >> 13);
}

// The same four codes -> their doubled values as int8, in the same byte order 0, 2, 1, 3.
__device__ __forceinline__ uint32_t e2m1_int8(uint32_t c) {
    uint32_t low = c & 0x07070707u, sign = c & 0x08080808u;
    uint32_t sel = low | low >> 12;
    uint32_t pos = __byte_perm(0x03020100u, 0x0C080604u, sel);
    uint32_t neg = __byte_perm(0xFDFEFF00u, 0xF4F8FAFCu, sel);
    return __byte_perm(pos, neg, 0x3210u | sign >> 1 | sign >> 13);
}

// The block scale 2^(e - 128) (half of E8M0's 2^(e - 127)), subnormal below e = 2.
__device__ __forceinline__ float e8m0_half(uint32_t e) {
    return __uint_as_float(e < 2 ? 0x00200000u << e : (e - 1) << 23);
}

struct MXFP4 {
    static constexpr int type = GGML_MXFP4, block_size = 32, type_size = 17;
    static constexpr bool affine = false;
    static constexpr bool integer_dot = true;
    // The activation words take the codes' byte order 0, 2, 1, 3 too.
    template <class Mem>
    struct UnitIn {
        Bytes<4, 1, Mem> qs;
        uint32_t e;
        __device__ void load(const uint8_t *row, int u) {
            const block_mxfp4 *b = reinterpret_cast<const block_mxfp4 *>(row) + u;
            qs.load(b->qs);
            e = Mem::ld(&b->e);
        }
        __device__ float dot(const XBlock &x) const {
            uint32_t w[4];
            qs.words(w);
            int dot = 0;
            for (int k = 0; k < 4; ++k) {
                uint32_t lo = e2m1_int8(nibbles(w[k], 0)), hi = e2m1_int8(nibbles(w[k], 4));
                dot = __dp4a(int(lo), int(__byte_perm(x.q[k], 0, 0x3120u)), dot);
                dot = __dp4a(int(hi), int(__byte_perm(x.q[k + 4], 0, 0x3120u)), dot);
            }
            return e8m0_half(e) * x.s.d * float(dot);
        }
    };
    using Unit = UnitIn<FromGlobal>;
    __device__ static RunScale run16(const uint8_t *row, int i0, float (&q)[16]) {
        const block_mxfp4 *b = reinterpret_cast<const block_mxfp4 *>(row) + i0 / 32;
        int shift = i0 % 32 ? 4 : 0;
        uint32_t w[4];
        load16<1>(b->qs, w);
        for (int i = 0; i < 4; ++i) {
            uint32_t v = e2m1_plus_12(nibbles(w[i], shift));
            q[4 * i] = byte_minus(v, 0, 12.0f);
            q[4 * i + 1] = byte_minus(v, 2, 12.0f);
            q[4 * i + 2] = byte_minus(v, 1, 12.0f);
            q[4 * i + 3] = byte_minus(v, 3, 12.0f);
        }
        return {e8m0_half(__ldg(&b->e)), 0.0f};
    }
};

}  // namespace fmt

// 16 consecutive values of a row from i0, rounded exactly as ggml's dequantizers (and
// orcd.quant) round them: d * q, then + m, never contracted into one fma.
template <class F>
__device__ __forceinline__ void dequant16(const uint8_t *row, int i0, float (&v)[16]) {
    fmt::RunScale s = F::run16(row, i0, v);
    for (int k = 0; k < 16; ++k)
        v[k] = F::affine ? __fmul_rn(s.d, v[k]) + s.m : __fmul_rn(s.d, v[k]);
}

static_assert(sizeof(block_q8_0) == fmt::Q8_0::type_size, "block_q8_0 layout");
static_assert(sizeof(block_q4_0) == fmt::Q4_0::type_size, "block_q4_0 layout");
static_assert(sizeof(block_q4_1) == fmt::Q4_1::type_size, "block_q4_1 layout");
static_assert(sizeof(block_q5_0) == fmt::Q5_0::type_size, "block_q5_0 layout");
static_assert(sizeof(block_q5_1) == fmt::Q5_1::type_size, "block_q5_1 layout");
static_assert(sizeof(block_q4_K) == fmt::Q4_K::type_size, "block_q4_K layout");
static_assert(sizeof(block_q5_K) == fmt::Q5_K::type_size, "block_q5_K layout");
static_assert(sizeof(block_q6_K) == fmt::Q6_K::type_size, "block_q6_K layout");
static_assert(sizeof(block_mxfp4) == fmt::MXFP4::type_size, "block_mxfp4 layout");

template <class F>
__host__ __device__ constexpr size_t row_bytes(int cols) {
    return size_t(cols) / F::block_size * F::type_size;
}

// The one list of the formats on the device, as llama.cpp's single vec-dot switch: those with
// an integer dot (F::integer_dot) and the float ones. with_format dispatches on the host,
// on_format inside kernels; both expand these lists.
#define ORCD_INTEGER_FORMATS(X) X(Q8_0) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q4_K) X(Q5_K) X(Q6_K) X(MXFP4)
#define ORCD_FLOAT_FORMATS(X) X(F32) X(F16) X(BF16)
#define ORCD_FORMAT_CASE(name) \
    case GGML_##name: return fn(fmt::name{});

// Calls fn(Format{}) for the trait of ggml_type, or fails with ORCD_ERR_INVALID.
template <class Fn>
orcd_status with_format(int ggml_type, Fn &&fn) {
    switch (ggml_type) {
        ORCD_INTEGER_FORMATS(ORCD_FORMAT_CASE)
        ORCD_FLOAT_FORMATS(ORCD_FORMAT_CASE)
    }
    return fail(ORCD_ERR_INVALID, "unsupported weight format: ggml type %d", ggml_type);
}

// Calls fn(Format{}) in a kernel for a warp-uniform ggml type; Int: only the formats with an
// integer dot (an integer path holds only Q8_1 x; its host sends the others down the plain
// path). R: fn's result, also returned (zero) for a type the host already refused.
template <bool Int, class R, class Fn>
__device__ __forceinline__ R on_format(int ggml_type, Fn &&fn) {
    switch (ggml_type) {
        ORCD_INTEGER_FORMATS(ORCD_FORMAT_CASE)
    }
    if constexpr (!Int) {
        switch (ggml_type) {
            ORCD_FLOAT_FORMATS(ORCD_FORMAT_CASE)
        }
    }
    return R{};
}

// A row of `cols` values must be whole blocks and whole runs of kRun.
template <class F>
orcd_status check_row(int cols, const char *op) {
    if (cols > 0 && cols % F::block_size == 0 && cols % kRun == 0) return ORCD_OK;
    return fail(ORCD_ERR_INVALID, "%s: a row of %d values is not a whole number of blocks of %d "
                "(and of runs of %d) for ggml type %d", op, cols, F::block_size, kRun, F::type);
}

}  // namespace orcd
