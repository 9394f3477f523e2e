#pragma once
#include <cuda_runtime.h>
#include "alloc.cuh"
#include "model.cuh"

namespace orcd {

// Copies every tensor from host memory (the GGUF mmap) to its own device allocation, in
// chunks of chunk_bytes through two pinned staging buffers, so that filling one buffer
// overlaps the copy of the other. Weights keep their stored format. progress (may be null)
// receives 0, 25, 50, 75 and 100 as bytes are queued.
orcd_status upload_tensors(Allocator &alloc, const orcd_tensor *tensors, int n,
                           size_t chunk_bytes, orcd_progress_fn progress, void *user,
                           cudaStream_t stream, TensorMap *out);

}  // namespace orcd
