"""Numeric gradients by central differences, and the relative error that compares them.

Used by the tests (every layer, both models) and by the explorer's "check this gradient"
(`gradient_check`, which compares a trace's gradient with differences on a float64 twin).
Run differences in float64: in float32 they drown in rounding.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from ..maths.batch import run_model


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


# -- checking a trace's gradients ---------------------------------------------------------------
# The analytic side is the trace's own gradient (summed over its backward events). The numeric
# side always runs on a float64 twin of the model (same config and weights, eval mode): in
# float32 a difference quotient drowns in rounding, while a float32 analytic gradient is good to
# ~1e-6 relative, so comparing it with float64 differences is both strict and free of false alarms.
GRADCHECK_TOLERANCE = {"float64": 1e-6, "float32": 1e-3}  # max rel. error of a correct gradient


@dataclass
class GradCheckResult:
    """Analytic (from the trace) vs numeric (float64 central differences) gradients."""

    param: str  # dotted parameter name
    indices: list[tuple[int, ...]]  # the elements checked
    analytic: np.ndarray  # (n,) from trace.param_grads(), in the trace's dtype
    numeric: np.ndarray  # (n,) central differences of the loss on the float64 twin
    rel_error: np.ndarray  # (n,) |a - n| / max(|a| + |n|, floor), element-wise
    abs_error: np.ndarray  # (n,) |a - n|
    max_rel_error: float
    eps: float  # the finite-difference step
    floor: float  # below it |a| + |n| counts as ~0: the error is then judged absolutely
    dtype: str  # dtype of the trace's (analytic) gradient
    dropout_in_trace: bool  # True: the trace ran with dropout, so the two need not agree
    note: str  # what to make of the numbers

    @property
    def tolerance(self) -> float:
        """The relative error a correct gradient stays under in this dtype."""
        return GRADCHECK_TOLERANCE[self.dtype]

    @property
    def ok(self) -> bool:
        """Every element within tolerance (near-zero ones within rounding noise)."""
        return self.max_rel_error <= self.tolerance


def float64_twin(model):
    """A float64, eval-mode copy of `model`: same config (break switches too) and weights."""
    from ..maths.models import build_model  # models import layers; keep this module importable alone

    twin = build_model(replace(model.config, dtype="float64"),
                       {p.name: p.data for p in model.params()})  # copied, as float64
    return twin.eval()


def gradient_check(model, loss_fn, trace, param_name: str, n_samples: int = 20,
                   eps: float = 1e-5, seed: int = 0) -> GradCheckResult:
    """Check `param_name`'s gradient from `trace` against float64 central differences.

    The loss is re-run on `trace.batch` by a float64 twin of `model` in eval mode (dropout off),
    perturbing each sampled element by +-eps and +-eps/2; Richardson extrapolation of the two
    differences cancels the eps^2 truncation error (it matters where the loss curves sharply,
    e.g. a LayerNorm over tiny inputs). `model` itself is not touched.

    The relative error's denominator has a floor: the rounding noise of the difference quotient
    (a few ulps of the loss over eps) and, for a float32 trace, float32 rounding of the largest
    gradient element. An element whose true gradient is ~0 (k_proj.b's is exactly zero:
    softmax ignores a shift shared by all keys) is then judged by its absolute error.
    """
    grads = trace.param_grads()
    names = [p.name for p in model.params()]
    if param_name not in names:
        raise KeyError(f"no parameter {param_name!r}; parameters are {sorted(names)}")
    if param_name not in grads:
        raise KeyError(f"the trace has no backward event for {param_name!r}; record a step "
                       f"with this model first")
    trace_grad = grads[param_name]
    dtype = str(trace_grad.dtype)
    twin = float64_twin(model)
    param = next(p for p in twin.params() if p.name == param_name)
    indices = sample_indices(param.data.shape, n_samples, np.random.default_rng(seed))
    analytic = np.array([trace_grad[i] for i in indices], dtype=np.float64)
    loss64 = type(loss_fn)(loss_fn.ignore_id, loss_fn.label_smoothing)
    batch = trace.batch

    def loss() -> float:
        return float(loss64.forward(run_model(twin, batch), batch.tgt_out))

    base = loss()
    coarse = numeric_grad(loss, param.data, indices, eps)
    numeric = (4 * numeric_grad(loss, param.data, indices, eps / 2) - coarse) / 3
    fd_noise = 24 * float(np.finfo(np.float64).eps) * max(abs(base), 1.0) / eps
    grad_noise = 64 * float(np.finfo(dtype).eps) * float(np.abs(trace_grad).max(initial=0.0))
    floor = max(fd_noise, grad_noise) / GRADCHECK_TOLERANCE[dtype]
    abs_err = np.abs(analytic - numeric)
    rel = rel_error(analytic, numeric, floor)
    dropout_in_trace = any(e.op == "dropout" and e.attrs.get("active") for e in trace.events)
    notes = []
    if dropout_in_trace:
        notes.append("the trace was recorded with dropout on, the numeric check runs without "
                     "it: the two gradients differ by design; record with model.eval() to compare")
    elif not np.isclose(base, trace.loss, rtol=1e-4 if dtype == "float32" else 1e-9):
        notes.append(f"the model's loss ({base:.6g}) is not the trace's ({trace.loss:.6g}): the "
                     f"weights or the loss changed since the trace was recorded")
    return GradCheckResult(param_name, indices, analytic, numeric, rel, abs_err,
                           float(rel.max(initial=0.0)), float(eps), floor, dtype,
                           dropout_in_trace, "; ".join(notes) or
                           f"{dtype} gradient vs float64 central differences")
