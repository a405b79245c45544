"""The backward half of engine.trace.formulas: what each gradient step computes, with its shapes.

`engine.trace.formulas` is the public face (`explain`, `formula`, `KEYS`); this module holds the
backward entries and their shape lines, plus the small `Entry` record and the shape-formatting
helpers that both halves use (it sits below engine.trace.formulas, so nothing imports in a circle).

Shape lines are plain ASCII and use the event's real tensors, so every number is this trace's.
Shapes: B batch, H heads, T queries, S keys, K head width, D model width, V vocabulary.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..maths.recorder import Event


@dataclass(frozen=True)
class Entry:
    """The fixed part of one explanation; `text` is two or three plain ASCII sentences."""

    title: str
    unicode: str
    ascii: str
    text: str


def dims(a: np.ndarray | tuple[int, ...]) -> str:
    """An array's shape, or a shape: (2, 4, 16) -> "[2,4,16]"; a scalar is "[]"."""
    shape = a if isinstance(a, tuple) else np.shape(a)
    return "[" + ",".join(str(n) for n in shape) + "]"


def num(x: float) -> str:
    """A short number: 0.3536, 4, 1e-05."""
    return f"{float(x):.4g}"


def positions(a: np.ndarray) -> str:
    """How many rows the leading axes hold, spelled out: (2, 4, 16) -> "2*4 = 8"."""
    lead = np.shape(a)[:-1]
    total = str(math.prod(lead))
    return f"{'*'.join(str(n) for n in lead)} = {total}" if len(lead) > 1 else total


def root(scale: float) -> str:
    """The divisor a multiplier stands for: 0.35355 -> "sqrt(8)" (else the plain number)."""
    k = 1.0 / (scale * scale)
    return f"sqrt({round(k)})" if abs(k - round(k)) < 1e-3 * k else num(1.0 / scale)


def blocked(d_out: np.ndarray, d_x: np.ndarray) -> str:
    """Where a gradient arrived but none passed on: "13 of 128"."""
    return f"{int(np.count_nonzero((d_x == 0) & (d_out != 0)))} of {d_out.size}"


BACKWARD: dict[str, Entry] = {
    "cross_entropy.backward": Entry(
        "Loss gradient at the logits", "∂loss/∂z = (p − q) / N", "d_logits = (p - q) / N",
        "Softmax followed by cross-entropy has a very simple gradient: the predicted "
        "probabilities minus the target distribution, divided by the N counted tokens. Tokens "
        "that got too much probability are pushed down and the right token is pushed up. Padding "
        "rows get exactly zero, because they were never part of the loss."),
    "output_softmax.backward": Entry(
        "Vocabulary softmax backward", "folded into ∂loss/∂z = (p − q) / N",
        "folded into d_logits = (p - q) / N",
        "The output softmax has no backward step of its own here: it is merged with the "
        "cross-entropy, where the two simplify to p - q. Doing both at once is cheaper and "
        "avoids dividing by tiny probabilities."),
    "logits.backward": Entry(
        "Output projection backward",
        "d_x = d_z Wᵀ,  ∂W = Σ_{b,t} xᵀ d_z,  ∂b = Σ_{b,t} d_z",
        "d_x = d_logits W^T,  grad W = sum_{b,t} x^T d_logits,  grad b = sum_{b,t} d_logits",
        "This is the linear-layer rule: the input gradient goes back through the transposed "
        "weights. One W served every position of every sequence, so its gradient is the sum over "
        "batch and positions of each position's x^T d_logits, and the bias gradient is the logit "
        "gradient summed the same way."),
    "logits.backward:tied": Entry(
        "Tied output projection backward", "d_x = d_z E,  ∂E += Σ_{b,t} d_zᵀ x",
        "d_x = d_logits E,  grad E += sum_{b,t} d_logits^T x",
        "The output projection was the embedding table E used a second time, so the input "
        "gradient goes back through E itself. Its weight gradient, summed over batch and "
        "positions, is added to E's gradient on top of what the embedding lookup will add."),
    "linear.backward": Entry(
        "Linear backward", "d_x = d_out Wᵀ,  ∂W = Σ_{b,t} xᵀ d_out,  ∂b = Σ_{b,t} d_out",
        "d_x = d_out W^T,  grad W = sum_{b,t} x^T d_out,  grad b = sum_{b,t} d_out",
        "The gradient reaches the input through the transpose of the same weights. W and b were "
        "shared by every position of every sequence, so their gradients add up the contributions "
        "of all of them: a sum, not an average, for both. Gradients are added (+=) into the "
        "parameters, so a weight used twice collects both shares."),
    "layernorm.backward": Entry(
        "LayerNorm backward",
        "g = d_out ⊙ γ;  d_x = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂));  "
        "∂γ = Σ d_out ⊙ x̂,  ∂β = Σ d_out",
        "g = d_out * gamma;  d_x = rstd * (g - mean(g) - x_hat * mean(g * x_hat));  "
        "grad gamma = sum d_out * x_hat,  grad beta = sum d_out",
        "gamma and beta act per feature, so their gradients are summed over batch and positions. "
        "Each input also moved its row's mean and variance, so the two subtracted means remove "
        "the parts of g that would only shift or stretch the whole row, which the normalisation "
        "cancels anyway. What remains is scaled by 1/sqrt(var + eps)."),
    "residual.backward": Entry(
        "Residual add backward", "d_x = d_out,  d_f(x) = d_out", "d_x = d_out,  d_fx = d_out",
        "An addition hands its gradient unchanged to both inputs, so the same d_out is copied to "
        "the skip path and to the sublayer branch. The skip copy reaches earlier layers without "
        "being shrunk by any sublayer, which is why residual stacks can be deep."),
    "residual.backward:off": Entry(
        "Residual add backward (switched off)", "d_f(x) = d_out,  no d_x", "d_fx = d_out,  no d_x",
        "With no_residual the forward was out = f(x), so all of the gradient goes into the "
        "sublayer branch and none takes the shortcut. Earlier layers get only what survives the "
        "trip back through every sublayer."),
    "dropout.backward": Entry(
        "Dropout backward", "d_x = d_out ⊙ m / (1 − p)", "d_x = d_out * m / (1 - p)",
        "The same random mask as in the forward is applied again: kept elements pass their "
        "gradient on, scaled by 1/(1 - p), and dropped elements get zero. A dropped element had "
        "no effect on the output, so it cannot have any gradient."),
    "dropout.backward:off": Entry(
        "Dropout backward (inactive)", "d_x = d_out", "d_x = d_out",
        "Dropout did nothing in the forward (evaluation mode, or p = 0), so the gradient passes "
        "straight through unchanged."),
    "relu.backward": Entry(
        "ReLU backward", "d_x = d_out ⊙ [x > 0]", "d_x = d_out * (x > 0)",
        "Where the input was positive the gradient passes unchanged; where ReLU output zero it "
        "is blocked. A unit that is negative for every input never gets gradient again, which is "
        "how dead ReLUs arise."),
    "gelu.backward": Entry(
        "GELU backward",
        "d_x = d_out ⊙ GELU′(x),  GELU′ = ½(1 + t) + ½ x (1 − t²) √(2/π) (1 + 3·0.044715 x²),  "
        "t = tanh(√(2/π) (x + 0.044715 x³))",
        "d_x = d_out * gelu'(x),  gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) "
        "(1 + 3*0.044715 x^2),  t = tanh(sqrt(2/pi) (x + 0.044715 x^3))",
        "The gradient is multiplied by the slope of the GELU curve at each input. The slope is "
        "about 1 for large positive inputs, about 0 for large negative ones, and changes smoothly "
        "in between (it even dips a little below 0), so no unit is cut off abruptly."),
    "merge_heads.backward": Entry(
        "Merge heads backward", "d_context = split(d_merged)",
        "d_context = split(d_merged): (B,T,D) -> (B,H,T,K)",
        "Merging only moved numbers around, so its gradient is the reverse move: each position's "
        "D-wide gradient is cut back into H slices of width K, one per head. No arithmetic "
        "happens."),
    "attend.backward": Entry(
        "Weighted sum backward", "d_w = d_context Vᵀ,  d_V = wᵀ d_context",
        "d_weights = d_context V^T,  d_V = weights^T d_context",
        "context = weights V is a matrix product, so each factor's gradient is the upstream "
        "gradient times the other factor, transposed. A weight's gradient says how well its value "
        "vector lines up with the output's gradient; a value vector collects gradient from every "
        "query that looked at it, in proportion to how much it looked."),
    "softmax.backward": Entry(
        "Softmax backward", "d_s = w ⊙ (d_w − Σ_j d_w ⊙ w)",
        "d_s = w * (d_w - sum_j(d_w * w))",
        "The weights in a row must sum to 1, so raising one score lowers all the others; the "
        "subtracted sum is that shared effect. Multiplying by w means positions with almost no "
        "weight, masked ones included, get almost no gradient, and a saturated one-hot row passes "
        "back almost nothing."),
    "mask.backward": Entry(
        "Mask backward", "d_scaled = keep ? d_masked : 0", "d_scaled = where(keep, d_masked, 0)",
        "A masked score was overwritten by a constant, so its original value had no effect on "
        "the loss and its gradient is zero. Kept positions pass their gradient through unchanged."),
    "scale.backward": Entry(
        "Scale backward", "d_scores = d_scaled / √d_k", "d_scores = d_scaled / sqrt(d_k)",
        "Multiplying by a constant in the forward multiplies the gradient by the same constant on "
        "the way back. So the gradients reaching the queries and keys are shrunk by sqrt(d_k) "
        "too, just as the scores were."),
    "scale.backward:off": Entry(
        "Scale backward (switched off)", "d_scores = d_scaled", "d_scores = d_scaled",
        "Scaling was switched off by no_scaling, so the gradient passes through unchanged. It "
        "is often tiny anyway, because an unscaled softmax saturates and passes little back."),
    "scores.backward": Entry(
        "Attention scores backward", "d_Q = d_s K,  d_K = d_sᵀ Q",
        "d_Q = d_scores K,  d_K = d_scores^T Q",
        "Each score was the dot product of one query and one key. So a query's gradient is the "
        "sum of the keys it was compared with, weighted by the score gradients, and a key's "
        "gradient is the same kind of sum over the queries."),
    "split_heads.backward": Entry(
        "Split heads backward", "d_q = merge(d_q_heads),  likewise d_k, d_v",
        "d_q = merge(d_q_heads),  likewise d_k, d_v: (B,H,T,K) -> (B,T,D)",
        "The reverse of the split: each head's K-wide slice of gradient goes back to its columns "
        "of the D-wide q, k and v. Nothing is added or scaled; in cross-attention the k and v "
        "gradients then flow on into the encoder's output."),
    "positional.backward": Entry(
        "Positional encoding backward",
        "d_x = d_out,  ∂P[0:T] = Σ_b d_out  (learned table only)",
        "d_x = d_out,  grad P[0:T] = sum_b d_out  (learned table only)",
        "Adding a position vector does not change how x affects the output, so the gradient "
        "passes to x untouched. A fixed sinusoid table has nothing to learn; a learned table gets "
        "each position's gradient summed over the batch, since every sequence used the same rows."),
    "embedding.backward": Entry(
        "Token embedding backward", "∂E[v] += s · Σ_{(b,t): ids[b,t]=v} d_out[b,t]",
        "grad E[v] += s * sum over (b,t) with ids[b,t] = v of d_out[b,t]",
        "The lookup copied rows of E, so each position's gradient, times the same scale s, is "
        "added back into the row it came from. A token that occurs several times collects every "
        "occurrence's gradient, and rows of tokens absent from the batch get zero. Token ids are "
        "integers, so nothing flows further back."),
}


def _scale_factor(e: Event) -> float | None:
    """The multiplier the forward used: from attrs if recorded, else read off the gradients."""
    if "scale" in e.attrs:
        return float(e.attrs["scale"]) if e.attrs.get("applied", True) else 1.0
    d_in, d_out = e.tensors["d_scaled"], e.tensors["d_scores"]
    i = int(np.argmax(np.abs(d_in)))
    return None if d_in.flat[i] == 0 else float(d_out.flat[i] / d_in.flat[i])


def _linear_shapes(e: Event) -> str:
    t = e.tensors
    d_out, d_x = t["d_out"], t["d_x"]
    i, o, n = d_x.shape[-1], d_out.shape[-1], math.prod(d_out.shape[:-1])
    up = "d_logits" if e.formula.startswith("logits") else "d_out"
    if "grad.embedding" in t:
        return (f"d_x = {up} E : {dims(d_out)} x [{o},{i}] -> {dims(d_x)}\n"
                f"grad E += {up}^T x : [{o},{n}] x [{n},{i}] -> {dims(t['grad.embedding'])}"
                f"  (summed over B*T = {positions(d_out)} positions)")
    lines = [f"d_x = {up} W^T : {dims(d_out)} x [{o},{i}] -> {dims(d_x)}",
             f"grad W = x^T {up} : [{i},{n}] x [{n},{o}] -> {dims(t['grad.w'])}"
             f"  (summed over B*T = {positions(d_out)} positions)"]
    if "grad.b" in t:
        lines.append(f"grad b = sum of {up} over the {n} positions -> {dims(t['grad.b'])}")
    return "\n".join(lines)


def _cross_entropy(e: Event) -> str:
    d, n = e.tensors["d_logits"], e.attrs.get("n_tokens", "N")
    scale = float(e.attrs.get("scale", 1.0))
    factor = "" if scale == 1.0 else f"{num(scale)} * "
    padding = int(np.count_nonzero(~d.any(axis=-1)))
    return (f"d_logits = {factor}(p - q) / {n} : p, q {dims(d)} -> {dims(d)}  ({n} counted tokens; "
            f"{padding} padding {'row is' if padding == 1 else 'rows are'} zero)")


def _layernorm(e: Event) -> str:
    t = e.tensors
    return (f"d_x = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), g = d_out * gamma : "
            f"{dims(t['d_out'])} -> {dims(t['d_x'])}  (means over D = {t['d_x'].shape[-1]})\n"
            f"grad gamma = sum d_out * x_hat -> {dims(t['grad.gamma'])}, grad beta = sum d_out -> "
            f"{dims(t['grad.beta'])}  (summed over {positions(t['d_out'])} positions)")


def _residual(e: Event) -> str:
    d = e.tensors["d_out"]
    if "d_x" not in e.tensors:
        return (f"d_fx = d_out : {dims(d)} -> {dims(d)}  "
                f"(no_residual: no gradient takes the skip path)")
    return f"d_x = d_out, d_fx = d_out : {dims(d)} -> {dims(d)} and {dims(d)}  (one copy each)"


def _dropout(e: Event) -> str:
    d_out, d_x, p = e.tensors["d_out"], e.tensors["d_x"], e.attrs.get("p", "p")
    if _dropout_off(e):
        return f"d_x = d_out : {dims(d_out)} -> {dims(d_x)}  (p = {p}, dropout was inactive)"
    return (f"d_x = d_out * m / (1 - {p}) : {dims(d_out)} -> {dims(d_x)}  "
            f"(gradient blocked at {blocked(d_out, d_x)} places)")


def _dropout_off(e: Event) -> bool:
    d_out, d_x = e.tensors["d_out"], e.tensors["d_x"]
    return e.attrs.get("p") == 0 or (bool(d_out.any()) and np.array_equal(d_out, d_x))


def _activation(e: Event) -> str:
    d_out, d_x = e.tensors["d_out"], e.tensors["d_x"]
    if e.op == "relu":
        return (f"d_x = d_out * (x > 0) : {dims(d_out)} -> {dims(d_x)}  "
                f"(blocked at {blocked(d_out, d_x)} places where x <= 0)")
    return f"d_x = d_out * gelu'(x) : {dims(d_out)} -> {dims(d_x)}  (elementwise)"


def _merge(e: Event) -> str:
    t = e.tensors
    return f"d_context = split(d_merged) : {dims(t['d_merged'])} -> {dims(t['d_context'])}"


def _attend(e: Event) -> str:
    t = e.tensors
    d_c, d_w, d_v = t["d_context"], t["d_weights"], t["d_v"]
    b, h, q, s, k = *d_w.shape, d_c.shape[-1]
    return (f"d_weights = d_context V^T : {dims(d_c)} x [{b},{h},{k},{s}] -> {dims(d_w)}\n"
            f"d_V = weights^T d_context : [{b},{h},{s},{q}] x {dims(d_c)} -> {dims(d_v)}")


def _softmax(e: Event) -> str:
    t = e.tensors
    where = (f"sums over axis {e.attrs['axis']}" if "axis" in e.attrs
             else "sums along the axis the forward softmax used")
    return (f"d_masked = w * (d_weights - sum(d_weights * w)) : {dims(t['d_weights'])} -> "
            f"{dims(t['d_masked'])}  ({where})")


def _mask(e: Event) -> str:
    t = e.tensors
    return (f"d_scaled = where(keep, d_masked, 0) : {dims(t['d_masked'])} -> {dims(t['d_scaled'])}"
            f"  (hidden positions get 0)")


def _scale(e: Event) -> str:
    d_in, d_out = e.tensors["d_scaled"], e.tensors["d_scores"]
    f = _scale_factor(e)
    if f is None:
        return f"d_scores = d_scaled * scale : {dims(d_in)} -> {dims(d_out)}  (all gradients zero)"
    if abs(f - 1.0) < 1e-6:
        return f"d_scores = d_scaled : {dims(d_in)} -> {dims(d_out)}  (no_scaling: factor 1)"
    return f"d_scores = d_scaled / {root(f)} = d_scaled * {num(f)} : {dims(d_in)} -> {dims(d_out)}"


def _scores(e: Event) -> str:
    t = e.tensors
    d_s, d_q, d_k = t["d_scores"], t["d_q"], t["d_k"]
    b, h, q, s = d_s.shape
    return (f"d_Q = d_scores K : {dims(d_s)} x {dims(d_k)} -> {dims(d_q)}\n"
            f"d_K = d_scores^T Q : [{b},{h},{s},{q}] x {dims(d_q)} -> {dims(d_k)}")


def _split(e: Event) -> str:
    t = e.tensors
    return (f"d_q = merge(d_q_heads) : {dims(t['d_q_heads'])} -> {dims(t['d_q'])}; "
            f"d_k, d_v : {dims(t['d_k_heads'])} -> {dims(t['d_k'])}")


def _positional(e: Event) -> str:
    d = e.tensors["d_out"]
    grad = e.tensors.get("grad.weight")
    if grad is not None:
        note = f"grad P[0:{d.shape[1]}] = sum over the batch of d_out, into rows of {dims(grad)}"
    elif e.attrs.get("kind") == "learned":
        note = "no_positional: the learned table was not used, so it gets no gradient"
    else:
        note = "fixed sinusoidal table: no gradient"
    return f"d_x = d_out : {dims(d)} -> {dims(d)}  ({note})"


def _embedding(e: Event) -> str:
    d, grad = e.tensors["d_out"], e.tensors["grad.weight"]
    s = float(e.attrs.get("scale", 1.0))
    rows = int(np.count_nonzero(grad.any(axis=-1)))
    return (f"grad E[ids] += d_out * {num(s)} : {dims(d)} added into rows of {dims(grad)}  "
            f"({rows} of {grad.shape[0]} rows touched; ids get no gradient)")


BACKWARD_SHAPES: dict[str, Callable[[Event], str]] = {
    "cross_entropy.backward": _cross_entropy,
    "logits.backward": _linear_shapes,
    "linear.backward": _linear_shapes,
    "layernorm.backward": _layernorm,
    "residual.backward": _residual,
    "dropout.backward": _dropout,
    "relu.backward": _activation,
    "gelu.backward": _activation,
    "merge_heads.backward": _merge,
    "attend.backward": _attend,
    "softmax.backward": _softmax,
    "mask.backward": _mask,
    "scale.backward": _scale,
    "scores.backward": _scores,
    "split_heads.backward": _split,
    "positional.backward": _positional,
    "embedding.backward": _embedding,
}


def backward_variant(e: Event) -> str:
    """"off" / "tied" when a switch or a setting changed what this backward step did, else ""."""
    if e.formula == "residual.backward" and "d_x" not in e.tensors:
        return "off"
    if e.formula == "dropout.backward" and _dropout_off(e):
        return "off"
    if e.formula == "scale.backward":
        f = _scale_factor(e)
        return "off" if f is not None and abs(f - 1.0) < 1e-6 else ""
    if e.formula == "logits.backward" and "grad.embedding" in e.tensors:
        return "tied"
    return ""
