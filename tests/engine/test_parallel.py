"""engine.fast.parallel: row blocks cover every row once, split products equal unsplit ones, and a
whole training step gives the same bits inline and split over threads."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.fast import parallel
from engine.maths.loss import CrossEntropyLoss

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def split(monkeypatch):
    """Two threads, and every operation split however small."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    parallel.set_threads(2)
    yield
    parallel.set_threads(1)


@pytest.mark.parametrize("n, parts", [(1, 2), (2, 2), (7, 2), (10, 3), (5, 8)])
def test_row_blocks_cover_every_row_once_in_order(n, parts):
    blocks = parallel.row_blocks(n, parts)
    rows = [i for b in blocks for i in range(b.start, b.stop)]
    assert rows == list(range(n))
    assert len(blocks) == min(n, parts)
    sizes = [b.stop - b.start for b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_small_work_runs_inline_and_large_work_on_two_threads():
    parallel.set_threads(2)
    try:
        seen: list[int] = []
        lock = threading.Lock()

        def note(rows: slice) -> None:
            with lock:
                seen.append(threading.get_ident())

        parallel.for_each_block(100, parallel.MIN_WORK - 1, note)
        assert seen == [threading.get_ident()]
        seen.clear()
        parallel.for_each_block(100, parallel.MIN_WORK, note)
        assert len(seen) == 2 and len(set(seen)) == 2
    finally:
        parallel.set_threads(1)


def test_an_error_in_a_pool_block_reaches_the_caller(split):
    def fail_late_rows(rows: slice) -> None:
        if rows.start > 0:
            raise ValueError("block failed")

    with pytest.raises(ValueError, match="block failed"):
        parallel.for_each_block(10, 10, fail_late_rows)


def test_blocks_on_other_threads_keep_the_callers_numpy_error_state(split):
    """np.errstate lives in a context variable: a block on a pool thread must see the caller's
    (the trainer silences overflow warnings while it detects divergence itself)."""
    seen = []
    with np.errstate(over="ignore"):
        parallel.for_each_block(4, 4, lambda rows: seen.append(np.geterr()["over"]))
    assert seen == ["ignore", "ignore"]


NESTED = """
from engine.fast import parallel
parallel.MIN_WORK = 0
parallel.set_threads(2)
calls = []
parallel.for_each_block(2, 2, lambda rows: parallel.for_each_block(4, 4, calls.append))
print(len(calls))
"""


def test_a_block_that_asks_for_blocks_runs_them_inline():
    """With the one pool thread busy running an outer block, a nested split would wait
    forever; it must run inline instead. In a child process, so a hang fails the test."""
    try:
        done = subprocess.run([sys.executable, "-c", NESTED], capture_output=True, text=True,
                              timeout=30, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("a nested for_each_block hung")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"  # one inline call per outer block


def test_set_threads_rejects_nonsense():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be"):
            parallel.set_threads(bad)


def test_split_products_equal_numpys(split):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((9, 5), dtype=np.float32)
    w = rng.standard_normal((5, 4), dtype=np.float32)
    bias = rng.standard_normal(4, dtype=np.float32)
    np.testing.assert_allclose(parallel.matmul(a, w, bias=bias), a @ w + bias, rtol=1e-6)
    d = rng.standard_normal((9, 4), dtype=np.float32)
    grad_w, grad_b, d_x = parallel.affine_backward(a, d, w, bias=True)
    np.testing.assert_allclose(grad_w, a.T @ d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_b, d.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_x, d @ w.T, rtol=1e-5, atol=1e-6)
    assert parallel.affine_backward(a, d, w, bias=False)[1] is None
    q = rng.standard_normal((3, 2, 6, 4))
    k = rng.standard_normal((3, 2, 6, 4))
    np.testing.assert_allclose(parallel.matmul(q, k.transpose(0, 1, 3, 2)),
                               q @ k.transpose(0, 1, 3, 2), rtol=1e-12)
    merged = np.empty((3, 6, 8))  # written through a (B,H,T,K) view, as attention does
    view = merged.reshape(3, 6, 2, 4).transpose(0, 2, 1, 3)
    parallel.matmul(q, rng.standard_normal((3, 2, 4, 4)), out=view)
    assert np.shares_memory(view, merged)
    np.testing.assert_array_equal(parallel.add(a, a), a + a)


def _step(kind: str, dropout: float, shape: tuple[int, int] = (5, 8),
          dtype: str = "float32") -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
    """One forward + loss + backward of a model on ids of `shape` (B, T); logits, loss, grads."""
    common = dict(vocab_size=13, d_model=16, n_heads=4, d_ff=24, n_layers=2,
                  max_len=shape[1] + 1, dropout=dropout, pad_id=0, dtype=dtype, seed=3)
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 13, size=shape)
    ids[0, -2:] = 0  # padding: the masks take the split path too
    if kind == "decoder":
        model = build_model(DecoderOnlyConfig(**common, norm="pre", activation="gelu"))
        logits = model.forward(ids)
    else:
        model = build_model(EncoderDecoderConfig(**common, norm="post", activation="relu"))
        logits = model.forward(ids, ids[:, ::-1].copy())
    loss_fn = CrossEntropyLoss(0, label_smoothing=0.1)
    loss = loss_fn.forward(logits, ids)
    model.backward(loss_fn.backward())
    return logits, loss, {p.name: p.grad.copy() for p in model.params()}


@pytest.mark.parametrize("dropout, shape, dtype", [
    (0.0, (5, 8), "float32"),  # attention in blocks
    (0.1, (5, 8), "float32"),  # attention step by step
    (0.0, (27, 77), "float32"),  # 2,079 rows: the row blocks of a product do not split evenly
    (0.0, (27, 77), "float64"),
])
@pytest.mark.parametrize("kind", ["decoder", "encoder_decoder"])
def test_a_step_gives_the_same_bits_inline_and_split(kind, dropout, shape, dtype, monkeypatch):
    inline = _step(kind, dropout, shape, dtype)
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    parallel.set_threads(2)
    try:
        split = _step(kind, dropout, shape, dtype)
    finally:
        parallel.set_threads(1)
    assert np.array_equal(inline[0], split[0])
    assert inline[1] == split[1]
    unequal = [name for name in inline[2] if not np.array_equal(inline[2][name], split[2][name])]
    assert not unequal, f"gradients differ between inline and split: {unequal}"


def _layer_results(n_rows: int, dtype: str) -> list[np.ndarray]:
    """A LayerNorm and a Linear, forward and backward, on (n_rows, 128) float rows."""
    from engine.maths.layers import LayerNorm, Linear

    rng = np.random.default_rng(n_rows)
    x = rng.standard_normal((n_rows, 128)).astype(dtype)
    d_out = rng.standard_normal((n_rows, 128)).astype(dtype)
    norm = LayerNorm("ln", 128, 1e-5, np.dtype(dtype))
    norm.gamma.data[:] = rng.standard_normal(128)
    linear = Linear("fc", 128, 128, rng, 0.1, np.dtype(dtype))
    out = [norm.forward(x), norm.backward(d_out), norm.gamma.grad.copy(), norm.beta.grad.copy()]
    out += [linear.forward(x), linear.backward(d_out), linear.w.grad.copy(), linear.b.grad.copy()]
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_rows", [1, 7, 33, 100, 2079])
def test_layers_give_the_same_bits_on_one_and_two_threads_for_any_row_count(n_rows, dtype,
                                                                             monkeypatch):
    """Rows split at any place change how BLAS groups the last rows of a product (its kernel
    takes rows in steps of several), and with it the rounding of a row mean: blocks must not."""
    inline = _layer_results(n_rows, dtype)
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    parallel.set_threads(2)
    try:
        split = _layer_results(n_rows, dtype)
    finally:
        parallel.set_threads(1)
    names = ["ln out", "ln d_x", "grad gamma", "grad beta", "fc out", "fc d_x", "grad w",
             "grad b"]
    unequal = [name for name, a, b in zip(names, inline, split) if not np.array_equal(a, b)]
    assert not unequal, f"{n_rows} rows, {dtype}: inline and split differ in {unequal}"
