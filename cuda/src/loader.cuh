#pragma once
#include <string>
#include <vector>
#include <cuda_runtime.h>
#include "alloc.cuh"
#include "model.cuh"

namespace orcd {

// Copies every tensor from host memory (the GGUF mmap) to device memory, in chunks of
// chunk_bytes through two pinned staging buffers, so that filling one buffer overlaps the copy
// of the other. Weights keep their stored format. Each tensor has an allocation of its own,
// except the leading members of a group of `joint` (names), at least two, present with one type
// and row length, each a whole number of 16-byte units: they share one, side by side in the
// group's order (model.cu's joint_tensors; the same bytes, one matrix of all their rows: q, k
// and v, or q and k where v's format differs). progress
// (may be null) receives 0, 25, 50, 75 and 100 as bytes are queued.
orcd_status upload_tensors(Allocator &alloc, const orcd_tensor *tensors, int n,
                           const JointGroups &joint,
                           size_t chunk_bytes, orcd_progress_fn progress, void *user,
                           cudaStream_t stream, TensorMap *out);

}  // namespace orcd
