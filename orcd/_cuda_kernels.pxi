# Kernel entry points on NumPy arrays, included by _cuda.pyx. Each call copies its
# arrays to the current device, runs one kernel of cuda/src/ops.cuh and copies the result back.
import numpy as np
from libc.stdint cimport int32_t

cdef extern from "orcd_cuda.h":
    orcd_status orcd_block_layout(int ggml_type, int *block_size, int *type_size) nogil
    orcd_status orcd_test_matvec(int ggml_type, const void *w, size_t w_bytes, const float *x,
                                 float *y, int rows, int cols) nogil
    orcd_status orcd_test_matmul(int ggml_type, const void *w, size_t w_bytes, const float *x,
                                 float *y, int rows, int cols, int n, int split) nogil
    orcd_status orcd_test_embed(int ggml_type, const void *w, size_t w_bytes, const int32_t *ids,
                                float *out, int rows, int cols, int n) nogil
    orcd_status orcd_bench_weights(int ggml_type, const void *w, size_t w_bytes, int rows,
                                   int cols, int n, int iters, double *seconds) nogil
    orcd_status orcd_bench_copy(size_t bytes, int iters, double *bytes_per_second) nogil
    orcd_status orcd_test_attention(const float *q, int n, const float *k, const float *v,
                                    int n_keys, int heads, int kv_heads, int head_dim, int window,
                                    const float *sinks, int pos0, int decode_path,
                                    float *out) nogil
    orcd_status orcd_bench_attention(int heads, int kv_heads, int head_dim, int n, int pos0,
                                     int iters, double *seconds) nogil
    ctypedef struct orcd_moe_layer:
        int d, ff, experts, used
        const float *router_w
        const float *router_b
        int gate_up_type, down_type
        const void *gate
        const void *up
        const void *down
        size_t gate_up_bytes, down_bytes
        const float *gate_b
        const float *up_b
        const float *down_b
    orcd_status orcd_test_moe(const orcd_moe_layer *layer, const float *xn, float *x,
                              int n) nogil
    orcd_status orcd_bench_moe(const orcd_moe_layer *layer, const float *xn, int tokens, int n,
                               int iters, double *seconds) nogil


def block_layout(int ggml_type):
    """(values per block, bytes per block) of a ggml type, as the CUDA kernels define it."""
    cdef int block_size = 0, type_size = 0
    check(orcd_block_layout(ggml_type, &block_size, &type_size))
    return block_size, type_size


def _weights(w):
    return np.ascontiguousarray(w).view(np.uint8).reshape(-1)


def _floats(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def matvec(int ggml_type, w, x, int rows, int cols):
    """y[rows] = W[rows, cols] @ x on the GPU; w: the GGUF bytes of W, x: cols floats."""
    cdef const unsigned char[::1] wv = _weights(w)
    cdef const float[::1] xv = _floats(x).reshape(-1)
    if xv.shape[0] != cols:
        raise ValueError(f"x has {xv.shape[0]} values, expected cols = {cols}")
    y = np.empty(rows, np.float32)
    cdef float[::1] yv = y
    cdef orcd_status st
    with nogil:
        st = orcd_test_matvec(ggml_type, &wv[0], wv.shape[0], &xv[0], &yv[0], rows, cols)
    check(st)
    return y


def matmul(int ggml_type, w, x, int rows, int cols, int split=-1):
    """Y[n, rows] = X[n, cols] @ W.T on the GPU; w: the GGUF bytes of W. split: -1 gives each
    split of 256 columns a block of its own where the engine would, 0 never, 1 always (on sm_90
    in a thread-block cluster), 2 always with the sums added through global memory, 3 always in
    a cluster whose blocks walk their split in steps of 64 columns, 4 never, in tiles of 128
    tokens x 128 rows dequantized as they load, 5 never, from W dequantized to F16 in scratch
    (the dense product: on wgmma where the GPU and build have it, as ORCD_WGMMA says), 6 as 5
    with W dequantized in slabs of 384 rows, 7 as 5 on mma.sync."""
    xa = _floats(x)
    if xa.ndim != 2 or xa.shape[1] != cols:
        raise ValueError(f"x has shape {xa.shape}, expected (n, {cols})")
    cdef int n = xa.shape[0]
    cdef const unsigned char[::1] wv = _weights(w)
    cdef const float[::1] xv = xa.reshape(-1)
    y = np.empty((n, rows), np.float32)
    cdef float[::1] yv = y.reshape(-1)
    cdef orcd_status st
    with nogil:
        st = orcd_test_matmul(ggml_type, &wv[0], wv.shape[0], &xv[0], &yv[0], rows, cols, n,
                              split)
    check(st)
    return y


def embed(int ggml_type, w, ids, int rows, int cols):
    """out[n, cols] = dequantize(W)[ids] on the GPU; w: the GGUF bytes of W."""
    cdef const int32_t[::1] iv = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
    cdef int n = iv.shape[0]
    cdef const unsigned char[::1] wv = _weights(w)
    out = np.empty((n, cols), np.float32)
    if n == 0:
        return out
    cdef float[::1] ov = out.reshape(-1)
    cdef orcd_status st
    with nogil:
        st = orcd_test_embed(ggml_type, &wv[0], wv.shape[0], &iv[0], &ov[0], rows, cols, n)
    check(st)
    return out


def bench_weights(int ggml_type, w, int rows, int cols, int n=0, int iters=100):
    """Mean seconds per matvec (n = 0) or matmul of n tokens with W resident on the GPU."""
    cdef const unsigned char[::1] wv = _weights(w)
    cdef double seconds = 0.0
    cdef orcd_status st
    with nogil:
        st = orcd_bench_weights(ggml_type, &wv[0], wv.shape[0], rows, cols, n, iters, &seconds)
    check(st)
    return seconds


def bench_attention(int heads, int kv_heads, int head_dim, int n, int pos0=0, int iters=100):
    """Mean seconds per attention_prefill of n queries at positions pos0.. over pos0 + n keys."""
    cdef double seconds = 0.0
    cdef orcd_status st
    with nogil:
        st = orcd_bench_attention(heads, kv_heads, head_dim, n, pos0, iters, &seconds)
    check(st)
    return seconds


def copy_bandwidth(size_t nbytes=1 << 30, int iters=20):
    """Device copy bandwidth in bytes/s: 2 * nbytes (read + write) / time of a D2D cudaMemcpy."""
    cdef double bw = 0.0
    cdef orcd_status st
    with nogil:
        st = orcd_bench_copy(nbytes, iters, &bw)
    check(st)
    return bw


# The kernel orcd_test_attention runs: by name of its function in cuda/src/attention.cuh.
ATTENTION_PATHS = {"prefill": 0, "decode": 1, "decode_one_launch": 2}


def attention(q, k, v, int pos0=0, int window=0, sinks=None, path="prefill"):
    """out[n, heads * head_dim] of queries q (n, heads, head_dim) at positions pos0.. over keys
    and values k, v (n_keys, kv_heads, head_dim) at positions 0..n_keys-1, which the GPU holds
    in an FP16 cache; window 0 or the sliding window, sinks None or [heads] logits; path one of
    ATTENTION_PATHS (the decode ones take one query)."""
    qa, ka, va = _floats(q), _floats(k), _floats(v)
    if qa.ndim != 3 or ka.ndim != 3 or va.shape != ka.shape or ka.shape[2] != qa.shape[2]:
        raise ValueError(f"q {qa.shape}, k {ka.shape}, v {va.shape} are not (n, heads, head_dim)"
                         " and two (n_keys, kv_heads, head_dim)")
    if qa.size == 0 or ka.size == 0:
        raise ValueError(f"q {qa.shape} and k {ka.shape} must not be empty")
    cdef int n = qa.shape[0], heads = qa.shape[1], head_dim = qa.shape[2]
    cdef int n_keys = ka.shape[0], kv_heads = ka.shape[1], decode_path = ATTENTION_PATHS[path]
    cdef const float[::1] qv = qa.reshape(-1)
    cdef const float[::1] kv = ka.reshape(-1)
    cdef const float[::1] vv = va.reshape(-1)
    sa = _floats(np.zeros(heads) if sinks is None else sinks).reshape(-1)
    if sa.shape[0] != heads:
        raise ValueError(f"{sa.shape[0]} sinks for {heads} heads")
    cdef const float[::1] sv = sa
    cdef const float *sink = NULL
    if sinks is not None:
        sink = &sv[0]
    out = np.empty((n, heads * head_dim), np.float32)
    cdef float[::1] ov = out.reshape(-1)
    cdef orcd_status st
    with nogil:
        st = orcd_test_attention(&qv[0], n, &kv[0], &vv[0], n_keys, heads, kv_heads, head_dim,
                                 window, sink, pos0, decode_path, &ov[0])
    check(st)
    return out


cdef class MoeLayer:
    """One mixture-of-experts layer's host arrays, as orcd_moe_layer points at them: router_w
    (experts, d), router_b (experts); gate, up: the GGUF bytes of `experts` matrices of ff x d
    in gate_up_type, gate_b, up_b (experts, ff); down: of `experts` matrices of d x ff in
    down_type, down_b (experts, d); `used` experts per token."""
    cdef orcd_moe_layer c
    cdef object keep  # the arrays c points into

    def __init__(self, router_w, router_b, int gate_up_type, gate, up, gate_b, up_b,
                 int down_type, down, down_b, int used):
        rw, rb = _floats(router_w), _floats(router_b).reshape(-1)
        gb, ub, db = _floats(gate_b), _floats(up_b), _floats(down_b)
        g, u, dn = _weights(gate), _weights(up), _weights(down)
        if rw.ndim != 2 or gb.ndim != 2:
            raise ValueError(f"router_w {rw.shape} and gate_b {gb.shape} must be 2-d")
        experts, d, ff = rw.shape[0], rw.shape[1], gb.shape[1]
        if rb.shape != (experts,) or gb.shape[0] != experts or ub.shape != gb.shape or \
                db.shape != (experts, d) or g.size != u.size or 0 in (g.size, dn.size):
            raise ValueError(f"router {rw.shape} + {rb.shape}, biases {gb.shape} {ub.shape} "
                             f"{db.shape}, gate/up/down bytes {g.size} {u.size} {dn.size} do "
                             f"not fit one layer of {experts} experts")
        self.keep = (rw, rb, gb, ub, db, g, u, dn)
        cdef const float[::1] rwv = rw.reshape(-1)
        cdef const float[::1] rbv = rb
        cdef const float[::1] gbv = gb.reshape(-1)
        cdef const float[::1] ubv = ub.reshape(-1)
        cdef const float[::1] dbv = db.reshape(-1)
        cdef const unsigned char[::1] gv = g
        cdef const unsigned char[::1] uv = u
        cdef const unsigned char[::1] dv = dn
        self.c.d, self.c.ff, self.c.experts, self.c.used = d, ff, experts, used
        self.c.router_w, self.c.router_b = &rwv[0], &rbv[0]
        self.c.gate_up_type, self.c.down_type = gate_up_type, down_type
        self.c.gate, self.c.up, self.c.down = &gv[0], &uv[0], &dv[0]
        self.c.gate_up_bytes, self.c.down_bytes = gv.shape[0], dv.shape[0]
        self.c.gate_b, self.c.up_b, self.c.down_b = &gbv[0], &ubv[0], &dbv[0]

    def _tokens(self, xn):
        xa = _floats(xn)
        if xa.ndim != 2 or xa.shape[0] == 0 or xa.shape[1] != self.c.d:
            raise ValueError(f"xn has shape {xa.shape}, expected (n > 0, {self.c.d})")
        return xa

    def moe(self, xn, x):
        """x + the layer's mixture of experts of xn on the GPU (cuda/src/moe.cu)."""
        xna, xa = self._tokens(xn), _floats(x).copy()
        if xa.shape != xna.shape:
            raise ValueError(f"x has shape {xa.shape}, xn {xna.shape}")
        cdef const float[::1] xnv = xna.reshape(-1)
        cdef float[::1] xv = xa.reshape(-1)
        cdef int n = xna.shape[0]
        cdef orcd_status st
        with nogil:
            st = orcd_test_moe(&self.c, &xnv[0], &xv[0], n)
        check(st)
        return xa

    def bench(self, xn, int n=1, int iters=100):
        """Mean seconds per moe call of n tokens, the layer resident on the GPU; successive
        calls take successive n rows of xn (len(xn) a multiple of n)."""
        xna = self._tokens(xn)
        cdef const float[::1] xnv = xna.reshape(-1)
        cdef int tokens = xna.shape[0]
        cdef double seconds = 0.0
        cdef orcd_status st
        with nogil:
            st = orcd_bench_moe(&self.c, &xnv[0], tokens, n, iters, &seconds)
        check(st)
        return seconds
