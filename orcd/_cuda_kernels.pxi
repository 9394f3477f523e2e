# Kernel entry points on NumPy arrays (issue 3), included by _cuda.pyx. Each call copies its
# arrays to the current device, runs one kernel of cuda/src/ops.cuh and copies the result back.
import numpy as np
from libc.stdint cimport int32_t

cdef extern from "orcd_cuda.h":
    orcd_status orcd_block_layout(int ggml_type, int *block_size, int *type_size) nogil
    orcd_status orcd_test_matvec(int ggml_type, const void *w, size_t w_bytes, const float *x,
                                 float *y, int rows, int cols) nogil
    orcd_status orcd_test_matmul(int ggml_type, const void *w, size_t w_bytes, const float *x,
                                 float *y, int rows, int cols, int n) nogil
    orcd_status orcd_test_embed(int ggml_type, const void *w, size_t w_bytes, const int32_t *ids,
                                float *out, int rows, int cols, int n) nogil
    orcd_status orcd_bench_weights(int ggml_type, const void *w, size_t w_bytes, int rows,
                                   int cols, int n, int iters, double *seconds) nogil
    orcd_status orcd_bench_copy(size_t bytes, int iters, double *bytes_per_second) nogil


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


def matmul(int ggml_type, w, x, int rows, int cols):
    """Y[n, rows] = X[n, cols] @ W.T on the GPU; w: the GGUF bytes of W."""
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
        st = orcd_test_matmul(ggml_type, &wv[0], wv.shape[0], &xv[0], &yv[0], rows, cols, n)
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


def copy_bandwidth(size_t nbytes=1 << 30, int iters=20):
    """Device copy bandwidth in bytes/s: 2 * nbytes (read + write) / time of a D2D cudaMemcpy."""
    cdef double bw = 0.0
    cdef orcd_status st
    with nogil:
        st = orcd_bench_copy(nbytes, iters, &bw)
    check(st)
    return bw
