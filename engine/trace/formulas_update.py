"""The update part of engine.trace.formulas: what the optimizer's step did to one parameter.

A traced training step ends with one "update" event per parameter (engine.maths.optim emits
them after the backward): the gradient the optimizer used, its state (m and v for Adam, the
velocity for SGD with momentum), the update and the weight before and after. The shape lines
give this step's numbers: t, the betas, the bias corrections, the learning rate, and how large
the update is next to the weight.

Shapes: each tensor has the parameter's own shape (a weight [D,F], a bias [F], ...).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..maths.recorder import Event
from .formulas_backward import Entry, dims, num

UPDATE: dict[str, Entry] = {
    "adam.update": Entry(
        "Adam update",
        "m = β₁m + (1−β₁)g,  v = β₂v + (1−β₂)g²,  m̂ = m / (1−β₁ᵗ),  v̂ = v / (1−β₂ᵗ),  "
        "w ← w − lr · m̂ / (√v̂ + ε)",
        "m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  m_hat = m / (1-b1^t),  "
        "v_hat = v / (1-b2^t),  w <- w - lr * m_hat / (sqrt(v_hat) + eps)",
        "Adam keeps two running averages for every weight: m of its gradient g and v of g "
        "squared. Both start at zero, so in the first steps they are too small; dividing by "
        "1 - beta^t (t = steps so far) corrects that. Each weight then moves by about lr in the "
        "direction its gradient has pointed lately, less where the gradient has been noisy."),
    "adam.update:l2": Entry(
        "Adam update (L2 weight decay)",
        "g = ∇w + λw,  m = β₁m + (1−β₁)g,  v = β₂v + (1−β₂)g²,  w ← w − lr · m̂ / (√v̂ + ε)",
        "g = grad w + wd w,  m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  "
        "w <- w - lr * m_hat / (sqrt(v_hat) + eps)",
        "Weight decay adds wd times the weight to its gradient before Adam sees it (L2 "
        "regularisation), pulling weights towards zero. m and v are running averages of that "
        "gradient and its square, corrected for starting at zero by 1 - beta^t, and each weight "
        "moves by about lr in the direction its gradient has pointed lately."),
    "adamw.update": Entry(
        "AdamW update",
        "w ← (1 − lr·λ) w,  m = β₁m + (1−β₁)g,  v = β₂v + (1−β₂)g²,  w ← w − lr · m̂ / (√v̂ + ε)",
        "w <- (1 - lr*wd) w,  m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  "
        "w <- w - lr * m_hat / (sqrt(v_hat) + eps)",
        "AdamW first shrinks every weight by the factor 1 - lr * wd (decoupled weight decay). "
        "Then it takes the Adam step: m and v are running averages of the gradient and its "
        "square, corrected for starting at zero by 1 - beta^t, and each weight moves by about "
        "lr in the direction its gradient has pointed lately."),
    "sgd.update": Entry(
        "SGD with momentum",
        "v ← μv + g,  w ← w − lr · v", "v <- mu v + g,  w <- w - lr * v",
        "The velocity v is a running sum of gradients that decays by the momentum mu each step, "
        "so directions the gradient keeps pointing in build up speed and directions that flip "
        "back and forth cancel out. The weight moves against the velocity, scaled by the "
        "learning rate."),
    "sgd.update:plain": Entry(
        "SGD update", "w ← w − lr · g", "w <- w - lr * g",
        "Plain gradient descent: every weight moves against its gradient g, scaled by the "
        "learning rate lr. A larger gradient means a larger step; nothing is remembered from "
        "earlier steps (momentum is 0)."),
}


def _change(e: Event) -> str:
    """How large the update is: its norm, and next to the weight's norm."""
    t = e.tensors
    update = float(np.linalg.norm(t["update"].astype(np.float64).ravel()))
    weight = float(np.linalg.norm(t["w_before"].astype(np.float64).ravel()))
    relative = f"{num(update / weight)} of norm(w_before) {num(weight)}" if weight else "w was 0"
    return f"norm(update) {num(update)}, {relative}"


def _adam(e: Event) -> str:
    t, a = e.tensors, e.attrs
    step, b1, b2 = int(a["step"]), float(a["beta1"]), float(a["beta2"])
    decay = float(a.get("decay", 1.0))
    after = "w_after = w_before - update" if decay == 1.0 else (
        f"w_after = {num(decay)} * w_before - update  (1 - lr*wd = 1 - {num(a['lr'])}*"
        f"{num(a['weight_decay'])})")
    grad = "g" if e.formula == "adamw.update" or not a.get("weight_decay") else (
        f"g = grad + {num(a['weight_decay'])} w")
    return (f"{grad}, m, v {dims(t['m'])}; step t = {step}, b1 = {num(b1)}, b2 = {num(b2)}\n"
            f"m_hat = m / {num(a['bias1'])}, v_hat = v / {num(a['bias2'])}  "
            f"(1 - {num(b1)}^{step}, 1 - {num(b2)}^{step})\n"
            f"update = {num(a['lr'])} * m_hat / (sqrt(v_hat) + {num(a['eps'])}): {_change(e)}\n"
            f"{after}")


def _sgd(e: Event) -> str:
    t, a = e.tensors, e.attrs
    grad = f"g = grad + {num(a['weight_decay'])} w" if a.get("weight_decay") else "g"
    if "velocity" in t:
        first = f"{grad}, v {dims(t['velocity'])}; v = {num(a['momentum'])} v + g, step {a['step']}"
    else:
        first = f"{grad} {dims(t['grad'])}; step {a['step']}"
    return (f"{first}\nupdate = {num(a['lr'])} * {'v' if 'velocity' in t else 'g'}: "
            f"{_change(e)}\nw_after = w_before - update")


UPDATE_SHAPES: dict[str, Callable[[Event], str]] = {
    "adam.update": _adam, "adamw.update": _adam, "sgd.update": _sgd,
}


def update_variant(e: Event) -> str:
    """"plain" for SGD without momentum, "l2" for Adam with weight decay in the gradient."""
    if e.formula == "sgd.update" and "velocity" not in e.tensors:
        return "plain"
    if e.formula == "adam.update" and e.attrs.get("weight_decay"):
        return "l2"
    return ""
