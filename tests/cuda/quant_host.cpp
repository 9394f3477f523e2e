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
