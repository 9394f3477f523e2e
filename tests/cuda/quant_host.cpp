// cuda/src/quant.cuh compiled for the host, so that its decoders can be checked without a GPU
// (tests/cuda/test_quant_host.py). The few device intrinsics they use get their documented
// meaning here.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cuda_runtime.h>

template <class T> T __ldg(const T *p) { return *p; }

inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
    shift &= 31;
    return shift ? (lo >> shift) | (hi << (32 - shift)) : lo;
}

// Byte n of the result is byte (s >> 4n) & 7 of y:x; PRMT's sign-replicate bit is unused by
// quant.cuh, which never sets it.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    uint64_t v = uint64_t(y) << 32 | x;
    unsigned r = 0;
    for (int n = 0; n < 4; ++n) r |= unsigned(v >> (8 * ((s >> (4 * n)) & 7)) & 0xFF) << (8 * n);
    return r;
}

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
// Ties to even (the default rounding mode), saturating, NaN to 0: PTX's cvt.rni.s32.f32.
inline int __float2int_rn(float a) {
    if (std::isnan(a)) return 0;
    if (a >= 2147483648.0f) return INT32_MAX;
    return a < -2147483648.0f ? INT32_MIN : int(std::nearbyint(a));
}

// Sum of the four signed byte products, plus c.
inline int __dp4a(int a, int b, int c) {
    for (int n = 0; n < 4; ++n) c += int(int8_t(a >> 8 * n)) * int(int8_t(b >> 8 * n));
    return c;
}

inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#include "quant.cuh"

namespace orcd {
orcd_status fail(orcd_status status, const char *, ...) { return status; }
}  // namespace orcd

// out[cols] = the row's values, as the kernels' dequant16 computes them.
extern "C" int dequant_row(int ggml_type, const uint8_t *row, int cols, float *out) {
    return orcd::with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(orcd::check_row<F>(cols, "dequant_row"));
        for (int i = 0; i < cols; i += orcd::kRun) {
            float v[orcd::kRun];
            orcd::dequant16<F>(row, i, v);
            memcpy(out + i, v, sizeof v);
        }
        return ORCD_OK;
    });
}

// out[u] = the integer path's dot of unit u (values 32u..32u+31) of the row with the Q8_1
// activations (xq: cols int8, xd and xsum: a scale and an integer sum per 32).
extern "C" int dot_units(int ggml_type, const uint8_t *row, int cols, const int8_t *xq,
                         const float *xd, const int *xsum, float *out) {
    return orcd::with_format(ggml_type, [&](auto f) {
        using F = decltype(f);
        ORCD_TRY(orcd::check_row<F>(cols, "dot_units"));
        if constexpr (F::integer_dot) {
            for (int u = 0; u < cols / 32; ++u) {
                orcd::XBlock x;
                memcpy(x.q, xq + 32 * u, sizeof x.q);
                x.s = {xd[u], xsum[u]};
                typename F::Unit w;
                w.load(row, u);
                out[u] = w.dot(x);
            }
            return ORCD_OK;
        }
        return ORCD_ERR_INVALID;  // float weights have no integer path
    });
}

// Each block of 32 of x as quantize_block_q8_1 (the matvec's integer path) rounds it.
extern "C" void quantize_q8_1(const float *x, int n, int8_t *q, float *d, int *sum) {
    for (int u = 0; u < n / 32; ++u) {
        float v[32];
        memcpy(v, x + 32 * u, sizeof v);
        orcd::XBlock b = orcd::quantize_block_q8_1(v);
        memcpy(q + 32 * u, b.q, sizeof b.q);
        d[u] = b.s.d;
        sum[u] = b.s.sum;
    }
}
