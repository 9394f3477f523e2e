# cython: language_level=3
"""The binding to the orcd CUDA library (cuda/include/orcd_cuda.h).

Thin by design: each function converts arguments, releases the GIL around GPU work and
turns a non-zero orcd_status into the matching orcd.errors exception.
"""
from orcd.errors import CudaError, InternalError, VramOom, Cancelled

cdef extern from "orcd_cuda.h":
    ctypedef enum orcd_status:
        ORCD_OK
        ORCD_ERR_CUDA
        ORCD_ERR_OOM
        ORCD_ERR_INVALID
        ORCD_ERR_NO_DEVICE
        ORCD_ERR_CANCELLED
    ctypedef struct orcd_device_info:
        char name[256]
        int sm
        size_t total_bytes
        size_t free_bytes
        int multiprocessors
    const char *orcd_last_error()
    int orcd_device_count() nogil
    int orcd_runtime_version() nogil
    orcd_status orcd_device_info_get(int device, orcd_device_info *out) nogil


cdef int check(orcd_status status) except -1:
    if status == ORCD_OK:
        return 0
    msg = orcd_last_error().decode("utf-8", "replace")
    if status == ORCD_ERR_OOM:
        raise VramOom(msg)
    if status == ORCD_ERR_CANCELLED:
        raise Cancelled(msg)
    if status == ORCD_ERR_INVALID:
        raise InternalError(msg)
    raise CudaError(msg)


def device_count() -> int:
    """Number of visible CUDA devices; 0 when there is no GPU or no driver."""
    cdef int n
    with nogil:
        n = orcd_device_count()
    return n


def runtime_version() -> str:
    """The CUDA runtime this library was linked with, e.g. '13.0'."""
    cdef int v = orcd_runtime_version()
    return f"{v // 1000}.{(v % 1000) // 10}"


def device_info(int device=0) -> dict:
    """Name, compute capability (sm), and memory of one device."""
    cdef orcd_device_info info
    cdef orcd_status st
    with nogil:
        st = orcd_device_info_get(device, &info)
    check(st)
    return {"name": info.name.decode("utf-8", "replace"), "sm": info.sm,
            "total_bytes": info.total_bytes, "free_bytes": info.free_bytes,
            "multiprocessors": info.multiprocessors}


include "_cuda_kernels.pxi"
include "_cuda_engine.pxi"
