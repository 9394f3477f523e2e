#pragma once
#include "orcd_cuda.h"

namespace orcd {

// Selects and validates the device for this host thread and sets the device malloc heap to
// 0 (nothing of orcd allocates from kernels).
orcd_status context_init(int device);

// The current device's multiprocessor count, queried once per device and then cached: the
// launch shapes of the decode kernels read it at every launch.
orcd_status multiprocessors(int *out);

// The same for its compute capability's major number.
orcd_status compute_major(int *out);

// Makes `device` current on the calling host thread (the decode loop runs on its own thread).
orcd_status use_device(int device);

}  // namespace orcd
