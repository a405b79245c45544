"""Run one large array operation on several cores by splitting it into row blocks.

NumPy runs an element-wise pass (exp, tanh, a multiply) on one core, and a single-threaded
BLAS runs each matrix product on one core. Both release the GIL while they work, so splitting
the rows of a (N, ...) operation into one contiguous block per thread and running the blocks
on a small thread pool does the same arithmetic on every core at once. Each block writes its
own rows of preallocated outputs, and no sum crosses a block boundary, so the result is
bit-identical to the unsplit operation (tests/engine/test_parallel.py checks a whole step).

One care keeps that true for every row count: a BLAS product takes rows in steps of a few
(its kernel's unroll) and rounds the last, leftover rows with another kernel, so a block that
starts at an odd row sums some rows differently (a LayerNorm row mean by 9e-10 in float32). The
blocks of a product therefore start at multiples of ROW_ALIGN rows and hold at least
MIN_BLOCK_ROWS, and the leftover rows stay at the end of the last block, where the unsplit
product has them too (`row_blocks(..., align=ROW_ALIGN)`). This holds with BLAS on one thread,
as the command line and the benchmark run it.

    for_each_block(n_rows, work, fn)   fn(rows) for slices `rows` covering range(n_rows)
    for_each_part(work, fn)            fn(part, parts): a block of several arrays at once

Handing a block to another thread and hearing back is slow on the 2-core machines this is
measured on: ~100-150 us for an empty round trip, and more in practice (a LayerNorm over
(2048, 128) takes 0.55 ms inline and 0.95 ms split in two). Matrix products gain even at that
size (a (2048,128) @ (128,128) product: 1.0 ms inline, 0.8 ms split); element-wise chains only
from about a millisecond of work. So an operation is split only when its `work`, an estimate
in element passes (elements x passes; a product's multiply-adds / 4), is at least MIN_WORK.
Below that it runs inline, as everything does when the engine has one thread, the default.
`set_threads(n)` turns splitting on; the command line and the benchmark do, with BLAS
single-threaded so the two kinds of thread do not fight over the cores.
"""
from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_WORK = 1 << 22  # element passes (~1 ms of element-wise work): below this, run inline
MACS_PER_PASS = 4  # a product's multiply-adds per element pass, for `work` estimates
ROW_ALIGN = 16  # a product's row blocks start at multiples of this (BLAS kernels step by 4-16)
MIN_BLOCK_ROWS = 2 * ROW_ALIGN  # and hold at least this many rows (smaller take other kernels)

_threads = 1
_pool: ThreadPoolExecutor | None = None
_in_block = threading.local()  # .active: this thread is running a block right now


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


def row_blocks(n_rows: int, parts: int, align: int = 1) -> list[slice]:
    """`parts` contiguous, nearly equal slices covering range(n_rows) (fewer if n_rows < parts).

    With align > 1 (rows of a product), every block starts at a multiple of `align`, holds at
    least 2 * align rows (so fewer blocks when n_rows is small: one below 4 * align), and the
    n_rows % align leftover rows end the last block.
    """
    if align > 1:
        parts = min(parts, n_rows // (2 * align))
    parts = max(1, min(parts, n_rows))
    units = n_rows // align  # whole groups of `align` rows
    bounds = [align * (units * i // parts) for i in range(parts)] + [n_rows]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def for_each_part(work: int, fn: Callable[[int, int], object], max_parts: int | None = None) -> None:
    """Call fn(part, parts) for part = 0..parts-1, in parallel when `work` is large.

    parts is the thread count (at most `max_parts`), or 1 when the work is small. Each call
    must write only its own share of the outputs (e.g. `row_blocks(n, parts)[part]`). The
    calling thread runs part 0 itself; an exception in any part is raised here after all end.
    """
    parts = 1 if _inline(work) else min(_threads, max_parts or _threads)
    if parts == 1:
        fn(0, 1)
        return
    # Each block runs in a copy of the caller's context, so NumPy's error state (np.errstate,
    # which lives in a context variable) is the caller's on every thread.
    futures = [_pool.submit(contextvars.copy_context().run, _run_block, fn, part, parts)
               for part in range(1, parts)]
    try:
        _run_block(fn, 0, parts)
    finally:
        for future in futures:
            future.result()


def _inline(work: int) -> bool:
    """True when an operation of `work` element passes runs on the calling thread alone."""
    # A block that itself asks for blocks runs them inline: the pool's threads are busy with
    # the outer blocks, and waiting for them from inside one would never end.
    return _pool is None or work < MIN_WORK or getattr(_in_block, "active", False)


def _run_block(fn: Callable[[int, int], object], part: int, parts: int) -> None:
    _in_block.active = True
    try:
        fn(part, parts)
    finally:
        _in_block.active = False


def for_each_block(n_rows: int, work: int, fn: Callable[[slice], object], align: int = 1) -> None:
    """Call fn(rows) for contiguous row blocks covering range(n_rows), in parallel when
    `work` is large; `fn` must only write the rows it is given. `align`: see `row_blocks`
    (ROW_ALIGN for the rows of a 2-D product, 1 for a batch of independent matrices)."""
    if _inline(work):  # the direct path: small operations (generation at batch 1) pay no more
        fn(slice(0, n_rows))
        return
    most = len(row_blocks(n_rows, _threads, align))
    for_each_part(work, lambda part, parts: fn(row_blocks(n_rows, parts, align)[part]),
                  max_parts=most)


def matmul(a, b, out=None, bias=None):
    """a @ b (+ bias) with the rows of a's first axis split across threads.

    a (N, ..., I); b (I, O) shared by every block, or (N, ..., I, O) split along with a (the
    batched products of attention); bias (O,) is added by each block to its own rows, while
    they are still in cache. Returns (N, ..., O), written into `out` when given.
    """
    n_in = a.shape[-1]
    work = a.size // max(n_in, 1) * b.shape[-1] * n_in // MACS_PER_PASS  # out.size * I / 4
    if _inline(work):  # the direct path: the same product on the whole of a, no blocks
        out = np.matmul(a, b, out=out)
        if bias is not None:
            out += bias
        return out
    if out is None:
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        out = np.empty(shape, dtype=np.result_type(a.dtype, b.dtype))
    split_b = b.ndim == a.ndim > 2 and b.shape[0] == a.shape[0]

    def block(rows: slice) -> None:
        np.matmul(a[rows], b[rows] if split_b else b, out=out[rows])
        if bias is not None:
            out[rows] += bias

    # A shared b makes `a`'s first axis the rows of one product; split_b: a batch of products.
    for_each_block(a.shape[0], work, block, align=1 if split_b else ROW_ALIGN)
    return out


def affine_backward(x, d_out, w, bias: bool):
    """The three products of a linear layer's backward, shared out in one hand-off.

    x (N, I) the layer's input, d_out (N, O), w (I, O) (any strides). Returns
    grad_w = x.T @ d_out (I, O), grad_b = column sums of d_out (O,) or None, d_x = d_out @ w.T
    (N, I). Each thread takes a block of grad_w's rows, of grad_b's entries and of d_x's rows;
    every sum runs over all N rows in one product, as unsplit.
    """
    (n, n_in), n_out = x.shape, w.shape[1]
    dtype = np.result_type(x.dtype, d_out.dtype)
    grad_w, d_x = np.empty((n_in, n_out), dtype), np.empty((n, n_in), dtype)
    grad_b = np.empty(n_out, dtype) if bias else None

    def part(j: int, parts: int) -> None:
        ins = row_blocks(n_in, parts, ROW_ALIGN)
        if j < len(ins):
            np.matmul(x[:, ins[j]].T, d_out, out=grad_w[ins[j]])
        if grad_b is not None:
            outs = row_blocks(n_out, parts)[j]
            np.sum(d_out[:, outs], axis=0, out=grad_b[outs])
        rows = row_blocks(n, parts, ROW_ALIGN)
        if j < len(rows):
            np.matmul(d_out[rows[j]], w.T, out=d_x[rows[j]])

    most = max(len(row_blocks(n_in, _threads, ROW_ALIGN)), len(row_blocks(n, _threads, ROW_ALIGN)))
    for_each_part(2 * n * n_in * n_out // MACS_PER_PASS, part, max_parts=min(most, n_out))
    return grad_w, grad_b, d_x


def add(a, b, out=None):
    """a + b for two arrays of one shape (N, ...), split over N; into `out` when given."""
    if out is None:
        out = np.empty(a.shape, dtype=np.result_type(a.dtype, b.dtype))
    for_each_block(a.shape[0], a.size, lambda rows: np.add(a[rows], b[rows], out=out[rows]))
    return out
