"""Keep freed memory in the process, so a training step does not fault in fresh pages.

Every step allocates the same activations again (tens to hundreds of MB). glibc returns large
blocks to the kernel when they are freed (anything above its mmap threshold, and the top of the
heap above its trim threshold), so the next step gets fresh pages and pays a page fault per 4 KB
to have them zeroed. On the 2-core machines this project is measured on, that was ~10-15% of a
medium-sized step (about 476k minor faults per 8 steps before, 52k after; `python -m engine.bench`
measures whole steps). Raising both thresholds keeps freed blocks for reuse.

This changes a process-wide allocator setting, so it is opt-in: the trainer and the benchmark
call it; importing the engine does not.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_KEEP = 1 << 30  # 1 GiB: blocks below this come from (and go back to) the heap

_tuned = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 1 GiB in the heap; True if it took effect.

    Safe to call more than once; a no-op (False) where the C library is not glibc.
    """
    global _tuned
    if _tuned:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, _KEEP)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP * 2 - 1))
    return _tuned
