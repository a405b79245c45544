"""A tensor's summary (the explorer's min, max, mean, std, norm) works in float64; on GPT-2's
(V, D) float32 gradients one float64 copy is 308 MB, so it makes one, not two, and gives the
same numbers NumPy's own reductions give."""
import tracemalloc

import numpy as np

from engine.trace.trace import tensor_stats


def _numpy_stats(array: np.ndarray) -> tuple:
    values = array.astype(np.float64).ravel()
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max()), float(finite.mean()), float(finite.std()),
            float(np.sqrt(np.dot(finite, finite))), int(np.count_nonzero(values == 0)))


def test_summary_of_a_large_float32_tensor_copies_it_once():
    rng = np.random.default_rng(0)
    grad = (rng.standard_normal((2_000, 500)) * 1e-3 + 2e-4).astype(np.float32)  # 4 MB
    grad[3, :7] = 0
    tracemalloc.start()
    try:
        stats = tensor_stats(grad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * grad.size * 8, f"peak {peak / 1e6:.1f} MB for {grad.size * 8 / 1e6} MB"
    got = (stats.min, stats.max, stats.mean, stats.std, stats.norm, stats.zeros)
    assert got == _numpy_stats(grad)  # bit for bit
    assert stats.nan == stats.inf == 0 and stats.zeros == 7


def test_a_float64_tensor_is_left_as_it_was():
    values = np.random.default_rng(1).standard_normal((30, 40))
    values[0, 0] = np.nan
    before = values.copy()
    stats = tensor_stats(values)
    np.testing.assert_array_equal(values, before)
    finite = before[np.isfinite(before)]
    assert stats.std == float(finite.std()) and stats.nan == 1
    clean = np.random.default_rng(2).standard_normal(500)
    kept = clean.copy()
    assert tensor_stats(clean).std == float(kept.std())
    np.testing.assert_array_equal(clean, kept)
