# The CUDA engine binding (issue 6), included by _cuda.pyx.
