"""Numeric gradients by central differences, and the relative error that compares them.

Used by the tests (every layer, both models) and by the explorer's "check this gradient".
Run it in float64: in float32 the differences drown in rounding.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


def numeric_grad(
    f: Callable[[], float],
    array: np.ndarray,
    indices: Iterable[tuple[int, ...]] | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """d f / d array by central differences, perturbing `array` in place and restoring it.

    `f` recomputes the scalar from scratch (it must read `array`). With `indices`, only those
    elements are checked and the result is a 1-D array in the same order; otherwise the full
    gradient, shaped like `array`.
    """
    if indices is None:
        grad = np.zeros(array.shape, dtype=np.float64)
        for idx in np.ndindex(array.shape):
            grad[idx] = _central_difference(f, array, idx, eps)
        return grad
    return np.array([_central_difference(f, array, idx, eps) for idx in indices])


def _central_difference(f: Callable[[], float], array: np.ndarray, idx, eps: float) -> float:
    old = array[idx]
    array[idx] = old + eps
    plus = f()
    array[idx] = old - eps
    minus = f()
    array[idx] = old
    return (plus - minus) / (2 * eps)


def rel_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """|a - n| / max(|a| + |n|, floor), element-wise: 0 is perfect, ~1 is unrelated.

    The floor keeps elements whose true gradient is zero (masked positions, ReLU's dead side)
    from dividing rounding noise by nothing.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)


def sample_indices(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> list[tuple]:
    """Up to `count` distinct element indices of an array of `shape`, chosen by `rng`."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]
