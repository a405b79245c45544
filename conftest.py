"""Test-session setup shared by every test directory.

The engine's models in the tests are small: one BLAS thread is faster for them than two, and
two threads slow down badly whenever the other core is busy (a parallel test, CI's own work).
This must run before NumPy is imported, which is why it lives here, at the root.
"""
import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
