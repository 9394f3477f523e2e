// The mixture-of-experts layer of gpt-oss (orcd/reference/gpt_oss.py: route, moe, swiglu_oai):
// a router picks `used` of `experts` per token, each chosen expert runs a clamped-SwiGLU
// feed-forward (gate, up, down, each with a bias), and the results are summed by the router's
// weights into the residual stream.
#pragma once
#include <cstddef>
#include <cuda_runtime.h>
#include "orcd_cuda.h"

namespace orcd {

// One layer's experts as GGUF stores them: ffn_{gate,up}_exps.weight (ne0 = d, ne1 = ff,
// ne2 = experts): `experts` matrices of ff rows x d columns one after another, each row
// row_bytes<F>(d) bytes; ffn_down_exps.weight likewise with d rows x ff columns; biases
// F32 [experts][rows]. Router ffn_gate_inp.weight F32 [experts][d], bias F32 [experts].
struct MoeWeights {
    const float *router_w, *router_b;
    int gate_up_type, down_type;  // ggml type ids (gate and up share one)
    const void *gate, *up, *down;
    const float *gate_b, *up_b, *down_b;
    int experts, used, d, ff;
    // Prefill multiplies on Hopper's warpgroup MMA (dense_wgmma: ORCD_WGMMA, an sm_90a build on
    // such a GPU); else on mma.sync.
    bool wgmma = false;
};

// Device scratch of moe for n tokens (256-byte aligned; its contents need no initialising).
size_t moe_scratch_bytes(const MoeWeights &w, int n);

// x[t] += sum over the `used` experts e chosen for xn[t] (router logits = router_w xn + b,
// highest first, ties to the lower id; weights = softmax of the chosen logits) of
// weight_e * (down_e swiglu_oai(gate_e xn + gate_b_e, up_e xn + up_b_e) + down_b_e).
// xn and x: n rows of d floats. Asynchronous on stream, no host sync, no allocation
// (capture-safe for CUDA graphs), deterministic (fixed reduction order, no float atomics).
// d and ff are multiples of 32, n at most 65535. One token (decode) with quantized experts:
// integer dots with xn and the hidden vectors as Q8_1, as matvec's integer path (ORCD_MATVEC
// is not consulted); otherwise (prefill, float experts) the tokens are grouped by expert and
// multiplied on F16 tensor cores, as matmul (on wgmma where w.wgmma).
orcd_status moe(const MoeWeights &w, const float *xn, float *x, int n, void *scratch,
                cudaStream_t stream);

}  // namespace orcd
