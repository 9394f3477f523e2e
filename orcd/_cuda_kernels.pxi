# Kernel entry points on NumPy arrays (issue 3), included by _cuda.pyx.
