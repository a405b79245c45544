"""Run one large array operation on several cores by splitting it into row blocks.

NumPy runs an element-wise pass (exp, tanh, a multiply) on one core, and OpenBLAS's batched
products over many small matrices (attention's (T, K) @ (K, S) per head) barely use a second
one. Both release the GIL while they work, so splitting the rows of a (N, ...) operation into
one contiguous block per thread and running the blocks on a small thread pool does the same
arithmetic on every core at once. Each block writes its own rows of a preallocated output, so
the result is bit-identical to the unsplit operation (no reduction crosses a block boundary).

    for_each_block(n_rows, work, fn)   calls fn(rows) for rows = slice(lo, hi) covering 0..n_rows

Off by default (one thread: fn(slice(0, n)) runs inline). `set_threads(n)` turns it on; the
trainer's command line and the benchmark do, with BLAS itself single-threaded so the two
kinds of thread do not compete for the same cores. Small operations always run inline: below
MIN_WORK elements, handing a block to another thread costs more than it saves.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_WORK = 1 << 16  # elements: below this an operation runs inline (a hand-off is ~20-50 us)

_threads = 1
_pool: ThreadPoolExecutor | None = None


def set_threads(n: int | None = None) -> int:
    """Use `n` threads for large operations (None: every core, at most 8); returns the count."""
    global _threads, _pool
    if n is None:
        n = min(os.cpu_count() or 1, 8)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
    if n != _threads:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(n - 1, thread_name_prefix="engine") if n > 1 else None
        _threads = n
    return _threads


def threads() -> int:
    """How many threads large operations are split across (1: not split)."""
    return _threads


def row_blocks(n_rows: int, parts: int) -> list[slice]:
    """`parts` contiguous, nearly equal slices covering range(n_rows) (fewer if n_rows < parts)."""
    parts = max(1, min(parts, n_rows))
    bounds = [n_rows * i // parts for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def for_each_block(n_rows: int, work: int, fn: Callable[[slice], object]) -> None:
    """Call fn(rows) for row blocks covering range(n_rows), in parallel when `work` is large.

    `work` is the number of elements the whole operation touches; `fn` must only write the
    rows it is given. The calling thread runs the first block itself, so with two threads one
    block goes to the pool. An exception in any block is raised here after all blocks end.
    """
    if _pool is None or work < MIN_WORK or n_rows < 2:
        fn(slice(0, n_rows))
        return
    first, *rest = row_blocks(n_rows, _threads)
    futures = [_pool.submit(fn, rows) for rows in rest]
    try:
        fn(first)
    finally:
        for future in futures:
            future.result()


def matmul(a, b, out=None, bias=None):
    """a @ b (+ bias) with the rows of a's first axis split across threads.

    a (N, ..., I); b (I, O) shared by every block, or (N, ..., I, O) split along with a (the
    batched products of attention); bias (O,) is added by each block to its own rows, while
    they are still in cache. Returns (N, ..., O), written into `out` when given.
    """
    if out is None:
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        out = np.empty(shape, dtype=np.result_type(a.dtype, b.dtype))
    split_b = b.ndim == a.ndim > 2 and b.shape[0] == a.shape[0]
    work = out.size + a.size

    def block(rows: slice) -> None:
        np.matmul(a[rows], b[rows] if split_b else b, out=out[rows])
        if bias is not None:
            out[rows] += bias

    for_each_block(a.shape[0], work, block)
    return out


def matmul_tn(a, b):
    """a.T @ b for a (N, I), b (N, O) -> (I, O), split over the I rows of the result.

    The weight gradient of a linear layer (x.T @ d_out): every block sums over all N rows, in
    the same order as the unsplit product.
    """
    out = np.empty((a.shape[1], b.shape[1]), dtype=np.result_type(a.dtype, b.dtype))

    def block(rows: slice) -> None:
        np.matmul(a[:, rows].T, b, out=out[rows])

    for_each_block(a.shape[1], a.size + b.size, block)
    return out


def add(a, b, out=None):
    """a + b for two arrays of one shape (N, ...), split over N; into `out` when given."""
    if out is None:
        out = np.empty(a.shape, dtype=np.result_type(a.dtype, b.dtype))
    for_each_block(a.shape[0], a.size, lambda rows: np.add(a[rows], b[rows], out=out[rows]))
    return out
