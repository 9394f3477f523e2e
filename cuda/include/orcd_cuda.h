/* The C API of the orcd CUDA library, seen by orcd/_cuda.pyx.
 * Conventions: every call returns an orcd_status; on failure orcd_last_error() holds a
 * human sentence. Handles are opaque. No C++ exception crosses this boundary. */
#ifndef ORCD_CUDA_H
#define ORCD_CUDA_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ORCD_OK = 0,
    ORCD_ERR_CUDA = 1,       /* a CUDA call or kernel failed        -> CUDA_ERROR */
    ORCD_ERR_OOM = 2,        /* a device allocation failed          -> VRAM_OOM */
    ORCD_ERR_INVALID = 3,    /* bad argument from the caller        -> INTERNAL */
    ORCD_ERR_NO_DEVICE = 4,  /* no GPU, no driver, or bad device id -> CUDA_ERROR */
    ORCD_ERR_CANCELLED = 5,  /* a job stopped on its cancel flag    -> CANCELLED */
} orcd_status;

const char *orcd_last_error(void);

/* Context: device discovery. Safe without a driver: device_count is then 0. */
typedef struct {
    char name[256];
    int sm;                     /* major*10 + minor, e.g. 90 */
    size_t total_bytes;
    size_t free_bytes;
    int multiprocessors;
} orcd_device_info;

int orcd_device_count(void);
int orcd_runtime_version(void);
orcd_status orcd_device_info_get(int device, orcd_device_info *out);

/* ---- Kernels on host arrays, for tests and benchmarks (issue 3: cuda/src/matvec.cu, matmul.cu, embed.cu) ---- */

/* ---- Engine: context, allocator, loader, forward pass, decode loop (issue 6) ---- */

#ifdef __cplusplus
}
#endif
#endif
