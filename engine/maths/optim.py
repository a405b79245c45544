"""Optimizers and gradient clipping over a model's flat parameter buffers.

Every model packs its parameters into one data buffer and one grad buffer
(`engine.maths.param.PackedParams`), so an optimizer update is a handful of whole-array operations
instead of a loop over hundreds of small arrays. The updates (g = gradient, p = parameter,
t = step count from 1, lr = learning rate):

    SGD     g += wd * p;  b = mu * b + g;  p -= lr * b                    (b = g when mu = 0)
    Adam    g += wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    AdamW   p *= 1 - lr * wd  (decoupled decay), then the Adam update without the wd term

These are the formulas of torch.optim.SGD / Adam / AdamW (dampening 0, no Nesterov, no
amsgrad), so given the same parameters and gradients they give the same numbers. AdamW decays
*every* parameter (biases, LayerNorm gains, embeddings included), exactly as
torch.optim.AdamW(model.parameters()) does with a single parameter group.

The optimizer owns its state (moments, step count); layers never see it. The gradient buffer
is read, never written (weight decay goes into a scratch buffer), so what the UI shows as
gradients stays the true gradients. All work is done in place with `out=` into buffers
allocated once: a step allocates no new arrays (fresh pages are expensive on small machines).

While a recorder is active (engine.maths.recorder), a step also emits one "update" event per
parameter, after the update, with copies of what it used and made (for Adam: grad, m, v, m_hat,
v_hat, update, w_before, w_after; for SGD: grad, velocity with momentum, update, w_before,
w_after). The numbers are the step's own buffers, read after it ran, so recording changes no
number of the step; without a recorder the only extra work is one context-variable read.

Shapes: P total number of parameter elements; every buffer here is (P,).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ..fast import parallel
from .param import PackedParams
from .recorder import Recorder, active


class Optimizer:
    """Base: holds the packed params, the default learning rate, and the step count."""

    name = "base"
    state_keys: tuple[str, ...] = ()  # names of the (P,) state buffers, for save/load

    def __init__(self, packed: PackedParams, lr: float):
        if not isinstance(packed, PackedParams):
            raise TypeError(f"packed must be engine.maths.param.PackedParams (pass model.packed), "
                            f"got {type(packed).__name__}")
        _check_positive("lr", lr)
        self.packed = packed
        self.lr = float(lr)  # used when step() is not given one (a schedule usually gives it)
        self.step_count = 0  # updates applied so far
        self._scratch: np.ndarray | None = None  # (P,) grad + wd * p, allocated once if needed

    def step(self, lr: float | None = None) -> None:
        raise NotImplementedError

    def _lr(self, lr: float | None) -> float:
        return self.lr if lr is None else float(lr)

    def _decayed_grad(self, weight_decay: float) -> np.ndarray:
        """grad + wd * p (L2 regularisation), in scratch; the grad buffer itself is untouched."""
        if not weight_decay:
            return self.packed.grad
        if self._scratch is None:
            self._scratch = np.empty_like(self.packed.data)
        np.multiply(self.packed.data, weight_decay, out=self._scratch)
        np.add(self._scratch, self.packed.grad, out=self._scratch)
        return self._scratch

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state as plain arrays: {"step": 0-d int64, key: (P,) array, ...}."""
        state = {"step": np.array(self.step_count, dtype=np.int64)}
        for key in self.state_keys:
            state[key] = getattr(self, key).copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore from `state_dict()` output (in place); all keys and shapes must match."""
        expected = {"step", *self.state_keys}
        if set(state) != expected:
            raise ValueError(
                f"{self.name} optimizer state must have keys {sorted(expected)}, "
                f"got {sorted(state)}; "
                f"was it saved by a different optimizer?"
            )
        step = np.asarray(state["step"])
        if step.shape != () or step.dtype.kind not in "iu" or not 0 <= int(step) < 2**63:
            raise ValueError(f"{self.name} optimizer state 'step' must be one whole number >= 0, "
                             f"got dtype {step.dtype} shape {step.shape}")
        for key in self.state_keys:
            buffer = getattr(self, key)
            array = np.asarray(state[key])
            if array.shape != buffer.shape:
                raise ValueError(
                    f"{self.name} optimizer state {key!r} has shape {array.shape}, "
                    f"expected {buffer.shape}; was it saved for a model of another size?"
                )
            if array.dtype.kind != "f":
                raise ValueError(f"{self.name} optimizer state {key!r} is {array.dtype}, "
                                 f"not floating point; the saved state is damaged")
            with np.errstate(invalid="ignore", over="ignore"):
                if not np.isfinite(array).all():
                    raise ValueError(f"{self.name} optimizer state {key!r} holds NaN or Inf; "
                                     f"a run cannot go on from it")
        for key in self.state_keys:
            getattr(self, key)[...] = state[key]
        self.step_count = int(state["step"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay."""

    name = "sgd"

    def __init__(self, packed: PackedParams, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(packed, lr)
        _check_fraction("momentum", momentum)
        _check_non_negative("weight_decay", weight_decay)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.state_keys = ("momentum_buffer",) if momentum else ()
        self.momentum_buffer = np.zeros_like(packed.data) if momentum else None  # (P,)
        self._update = np.empty_like(packed.data)  # (P,) lr * direction, before subtracting

    def step(self, lr: float | None = None) -> None:
        recorder = active()
        before = None if recorder is None else self.packed.data.copy()  # (P,) w_before
        grad = self._decayed_grad(self.weight_decay)  # (P,)
        direction = grad
        if self.momentum:
            # b = mu * b + g; zero-initialised, so the first step gives b = g as torch does
            self.momentum_buffer *= self.momentum
            self.momentum_buffer += grad
            direction = self.momentum_buffer
        np.multiply(direction, self._lr(lr), out=self._update)
        self.packed.data -= self._update
        self.step_count += 1
        if recorder is not None:
            state = {"grad": grad, "velocity": self.momentum_buffer, "update": self._update}
            _emit_updates(recorder, self, before, state, "sgd.update", lr=self._lr(lr),
                          momentum=self.momentum, weight_decay=self.weight_decay,
                          step=self.step_count)


class Adam(Optimizer):
    """Adam with bias correction; weight_decay adds wd * p to the gradient (L2, not AdamW)."""

    name = "adam"
    state_keys = ("exp_avg", "exp_avg_sq")
    decoupled = False  # AdamW sets this: decay the weights directly instead of the gradient

    def __init__(self, packed: PackedParams, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(packed, lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_fraction("betas[0]", betas[0])
        _check_fraction("betas[1]", betas[1])
        _check_positive("eps", eps)
        _check_non_negative("weight_decay", weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.exp_avg = np.zeros_like(packed.data)  # (P,) m: running mean of gradients
        self.exp_avg_sq = np.zeros_like(packed.data)  # (P,) v: running mean of squared gradients
        self._denom = np.empty_like(packed.data)  # (P,) scratch for the denominator and update

    def step(self, lr: float | None = None) -> None:
        lr = self._lr(lr)
        beta1, beta2 = self.betas
        recorder = active()
        before = None if recorder is None else self.packed.data.copy()  # (P,) w_before
        if self.decoupled and self.weight_decay:
            self.packed.data *= 1.0 - lr * self.weight_decay  # p *= 1 - lr * wd, before the update
            grad = self.packed.grad
        else:
            grad = self._decayed_grad(self.weight_decay)  # (P,)
        self.step_count += 1
        bias1 = 1.0 - beta1**self.step_count  # corrects m and v for starting at zero
        bias2_sqrt = math.sqrt(1.0 - beta2**self.step_count)
        data, m, v, work = self.packed.data, self.exp_avg, self.exp_avg_sq, self._denom

        def block(i: slice) -> None:  # element-wise: blocks of the flat buffers run in parallel
            g, w = grad[i], work[i]
            m[i] *= beta1  # m = b1 m + (1 - b1) g
            np.multiply(g, 1.0 - beta1, out=w)
            m[i] += w
            v[i] *= beta2  # v = b2 v + (1 - b2) g^2
            np.multiply(g, g, out=w)
            w *= 1.0 - beta2
            v[i] += w
            np.sqrt(v[i], out=w)  # w = sqrt(v) / sqrt(1 - b2^t) + eps
            w /= bias2_sqrt
            w += self.eps
            np.divide(m[i], w, out=w)  # w = m / denom
            w *= lr / bias1
            data[i] -= w

        parallel.for_each_block(len(data), 14 * len(data), block)  # 14 passes
        if recorder is not None:  # work holds each element's update: lr m_hat / (sqrt(v_hat) + eps)
            bias2 = 1.0 - beta2**self.step_count
            state = {"grad": grad, "m": m, "v": v, "m_hat": m / bias1, "v_hat": v / bias2,
                     "update": work}
            decay = 1.0 - lr * self.weight_decay if self.decoupled else 1.0
            _emit_updates(recorder, self, before, state, f"{self.name}.update", lr=lr,
                          beta1=beta1, beta2=beta2, eps=self.eps, step=self.step_count,
                          bias1=bias1, bias2=bias2, weight_decay=self.weight_decay,
                          decay=decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd on every param."""

    name = "adamw"
    decoupled = True

    def __init__(self, packed: PackedParams, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(packed, lr, betas, eps, weight_decay)


OptimizerName = Literal["adam", "adamw", "sgd"]  # what TrainConfig.optimizer may name
OPTIMIZERS: dict[OptimizerName, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def build_optimizer(name: str, packed: PackedParams, **kwargs) -> Optimizer:
    """An optimizer by name ("sgd", "adam", "adamw") with its keyword settings."""
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers are {sorted(OPTIMIZERS)}")
    try:
        return cls(packed, **kwargs)
    except TypeError as error:  # an option this optimizer does not take, e.g. momentum for adam
        raise ValueError(f"bad settings for optimizer {name!r}: {error}") from error


def clip_grad_norm(packed: PackedParams, max_norm: float, norm: float | None = None) -> float:
    """Scale all gradients so their global L2 norm is at most `max_norm`; returns the norm before.

    Same rule as torch.nn.utils.clip_grad_norm_: multiply by max_norm / (norm + 1e-6) when that
    is below 1. Pass `norm` if it is already known, to skip recomputing it. A non-finite norm
    leaves the gradients untouched (the trainer skips such a step anyway).
    """
    _check_positive("max_norm", max_norm)
    total = packed.grad_norm() if norm is None else float(norm)
    if math.isfinite(total):
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            packed.grad *= coef
    return total


def _emit_updates(recorder: Recorder, optimizer: Optimizer, before: np.ndarray,
                  state: dict[str, np.ndarray | None], formula: str, **attrs: float) -> None:
    """One "update" event per parameter, at the parameter's name ("decoder.blocks.0.ff.w1"),
    with each (P,) buffer's slice shaped like the parameter; `None` buffers are left out.
    Every tensor is a fresh copy: the buffers are reused, and changed in place, next step."""
    packed = optimizer.packed
    for param in packed.params:
        part = packed.slices[param.name]
        shape = param.data.shape
        tensors = {name: buffer[part].reshape(shape).copy()
                   for name, buffer in state.items() if buffer is not None}
        tensors["w_before"] = before[part].reshape(shape)  # `before` is already a copy
        tensors["w_after"] = packed.data[part].reshape(shape).copy()
        recorder.update(param.name, optimizer.name, tensors, formula, **attrs)


def _check_positive(name: str, value: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            or not math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number (not inf or nan), got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
            or not math.isfinite(value)):
        raise ValueError(f"{name} must be a number >= 0 (0 turns it off; not inf or nan), "
                         f"got {value!r}")


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
