"""Giving a closed screen's memory back to the system, so the process's size is what is open.

A trace is large (90 MB for a char-lm training batch). When an inspector closes, its trace is
dropped at once (`Session.close`), but three things keep the process large:

- A screen and its widgets refer to each other, so the screen itself is freed only by
  Python's cycle collector, which runs after so many new objects, not bytes: `gc.collect()`.
- Textual 8 caches, per widget, the colours of its lines in a class-wide `lru_cache` of 1,024
  entries that holds each widget's rendered lines: closed screens' lines stay until 1,024
  newer widgets push them out (about 1.5 MB more per inspector). The cache is only a cache.
- glibc keeps freed memory in its heap for reuse: after an inspector the process stays
  ~90 MB larger until `malloc_trim(0)` hands the free pages back (glibc only; elsewhere it is
  not there and nothing is done).
"""
from __future__ import annotations

import ctypes
import gc

from textual._styles_cache import StylesCache


def give_back_memory() -> None:
    """Forget closed widgets' line caches, collect cyclic garbage, then return the allocator's
    free pages to the system."""
    colours = getattr(StylesCache.get_inner_outer, "cache_clear", None)
    if colours is not None:
        colours()
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc: its allocator keeps what it keeps
        return
    trim(0)
