"""Giving a closed inspector's memory back to the system, so the process's size is what is open.

A trace is large (90 MB for a char-lm training batch). When an inspector closes, its trace is
dropped at once (`Session.close`, and no unmounted widget keeps one), but two things keep the
process large:

- Textual 8 caches, per widget, the colours of its lines in a class-wide `lru_cache` of 1,024
  entries that holds each widget's rendered lines: closed screens' lines stay until 1,024
  newer widgets push them out (about 1.5 MB more per inspector). The cache is only a cache.
- glibc keeps freed memory in its heap for reuse: after an inspector the process stays
  ~90 MB larger until `malloc_trim(0)` hands the free pages back (glibc only; elsewhere it is
  not there and nothing is done).

No `gc.collect()`: the closed screen's own objects (widgets refer to each other) are left to
Python's cycle collector: a full collection of the app's ~160,000 objects took 0.3-0.6 s on
Esc (measured on a busy 2-core machine), and ten inspects stay flat without it.
"""
from __future__ import annotations

import ctypes

from textual._styles_cache import StylesCache


def give_back_memory() -> None:
    """Forget closed widgets' line caches, then return the allocator's free pages."""
    colours = getattr(StylesCache.get_inner_outer, "cache_clear", None)
    if colours is not None:
        colours()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc: its allocator keeps what it keeps
        return
    trim(0)
