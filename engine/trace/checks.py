"""Checks over a Trace: does this forward + backward behave like a correct transformer?

Each check reads a `Trace` (and, for the ones that must re-run the model, the model itself) and
returns `Finding`s: one per thing that is wrong, naming the event and saying what is wrong and
why it matters, or a single passing finding when all is well. `run_checks` runs them all.

    check                   what it catches                               break switch it flags
    check_softmax_rows      attention rows (and output probs) sum to 1    softmax_wrong_axis
    check_attention_range   attention weights lie in [0, 1]
    check_masked_zero       masked keys and future keys get zero weight   no_causal_mask
    check_no_future_leak    changing a later target token leaves earlier  no_causal_mask
                            positions' logits alone (re-runs the model)
    check_finite            no NaN / Inf anywhere (names the first event)
    check_shapes            every tensor has the shape the config implies
    check_positional        the positional encoding is added              no_positional
    check_scaling           scores are multiplied by 1/sqrt(d_k)          no_scaling
    check_residual          residual adds are x + f(x), not f(x)          no_residual
    check_gradients         sampled gradient checks (re-runs the model)

The checks that re-run the model (`check_no_future_leak`, `check_gradients`) live in
engine.trace.rerun_checks and `Finding` in engine.trace.findings; both are re-exported here, as is
`gradient_check` (engine.trace.gradcheck), which compares a parameter's gradient from the trace's
backward events with float64 central differences, element by element.

Shapes: B batch, S source length, T target length, D model width, H heads, K head width,
F feed-forward width, V vocabulary; an attention layer's maps are (B, H, Tq, Tk).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .findings import ERROR, WARNING, Finding, passed as _passed
from .gradcheck import GradCheckResult, gradient_check
from ..maths.facts import SOURCE
from ..maths.param import Module
from ..maths.recorder import FORWARD, Event
from .rerun_checks import check_gradients, check_no_future_leak
from .trace import Trace

__all__ = [
    "Finding", "GradCheckResult", "TRACE_CHECKS", "check_attention_range", "check_finite",
    "check_gradients", "check_masked_zero", "check_no_future_leak", "check_positional",
    "check_residual", "check_scaling", "check_shapes", "check_softmax_rows", "gradient_check",
    "run_checks",
]

ZERO_WEIGHT = 1e-6  # attention weight that counts as "none" (a masked key gets exactly 0.0)


# -- helpers ----------------------------------------------------------------------------------
def _sum_tolerance(dtype: np.dtype) -> float:
    """How far from 1 a sum of probabilities may drift by rounding alone."""
    return 1e-4 if np.dtype(dtype).itemsize <= 4 else 1e-9


def _forward(trace: Trace, op: str) -> list[Event]:
    return [e for e in trace.events if e.phase == FORWARD and e.op == op]


def _where(index: tuple[int, ...]) -> str:
    """An attention cell (b, h, i, j) in words, counted from 1 as the screen counts."""
    words = ("item", "head", "query", "key") if len(index) == 4 else (
        ("item", "head", "query") if len(index) == 3 else ("item", "position"))
    return ", ".join(f"{word} {int(i) + 1}" for word, i in zip(words, index))


# -- attention and probabilities --------------------------------------------------------------
def check_softmax_rows(trace: Trace) -> list[Finding]:
    """Every attention row (over keys) and every output distribution (over the vocabulary)
    must sum to 1: each query spends exactly one unit of attention, each prediction is a
    probability distribution."""
    findings = []
    events = _forward(trace, "softmax") + _forward(trace, "output_softmax")
    worst = 0.0
    for event in events:
        attention = event.op == "softmax"
        values = event.tensors["weights" if attention else "probs"]
        sums = values.astype(np.float64).sum(axis=-1)  # (..., rows)
        if not np.isfinite(sums).all():
            continue  # check_finite reports NaN/Inf where they start
        expected = 1.0
        layer = event.facts.attention_layer
        mask = trace.index.attention.get(layer, {}).get("mask") if attention else None
        if mask is not None:  # a query that may see no key attends to nothing: its row sums to 0
            seen = np.broadcast_to(mask.tensors["keep"], values.shape).any(axis=-1)
            expected = np.where(seen, 1.0, 0.0)
        error = np.abs(sums - expected)
        worst = max(worst, float(error.max(initial=0.0)))
        bad = error > _sum_tolerance(values.dtype)
        if not bad.any():
            continue
        where = tuple(int(x) for x in np.unravel_index(int(error.argmax()), error.shape))
        axis = event.attrs.get("axis", -1)
        if not attention:
            why = ("The loss reads these as the model's probabilities for the next token; "
                   "if they do not sum to 1, the loss and its gradient are wrong.")
        else:
            why = (f"The softmax ran over axis {axis} (the queries), not the keys. "
                   if axis not in (-1, values.ndim - 1) else "")
            why += ("Each query must split exactly one unit of attention over the keys; "
                    "otherwise its output is scaled arbitrarily and a key counts for more "
                    "or less depending on how many other queries look at it.")
        findings.append(Finding(
            "softmax_rows", False, ERROR,
            f"{event.path}: {int(bad.sum())} of {bad.size} rows do not sum to 1 (worst "
            f"{float(sums[where]):.4g} at {_where(where)}). {why}", event.index, event.path))
    return findings or _passed("softmax_rows", f"all {len(events)} softmax outputs have rows "
                                               f"summing to 1 (max deviation {worst:.1e})")


def check_attention_range(trace: Trace) -> list[Finding]:
    """Attention weights (before dropout) and output probabilities lie in [0, 1]."""
    findings = []
    events = _forward(trace, "softmax") + _forward(trace, "output_softmax")
    tol = 1e-6
    for event in events:
        values = event.tensors["weights" if event.op == "softmax" else "probs"]
        finite = values[np.isfinite(values)]
        if not finite.size:
            continue
        low, high = float(finite.min()), float(finite.max())
        if low < -tol or high > 1 + tol:
            findings.append(Finding(
                "attention_range", False, ERROR,
                f"{event.path}: values range over [{low:.4g}, {high:.4g}], outside [0, 1]. "
                f"A softmax output is a probability; a negative or >1 weight means the "
                f"normalisation is broken, and the weighted average is no longer an average.",
                event.index, event.path))
    return findings or _passed("attention_range",
                               f"all {len(events)} softmax outputs lie in [0, 1]")


def check_masked_zero(trace: Trace) -> list[Finding]:
    """Keys the mask hides get zero weight; in decoder self-attention every future key too.

    A fully masked row (a query that may see no key at all) attends to nothing: its weights
    are all zero, as every masked weight must be. The causal part does not trust the mask: it looks at the weights themselves.
    """
    findings = []
    checked = 0
    for softmax in _forward(trace, "softmax"):
        layer = softmax.facts.attention_layer
        causal = softmax.facts.causal  # decoder self-attention must not see future tokens
        weights = softmax.tensors["weights"]  # (B,H,Tq,Tk)
        mask_event = trace.index.attention.get(layer, {}).get("mask")
        checked += mask_event is not None or causal
        if mask_event is not None:
            hidden = ~np.broadcast_to(mask_event.tensors["keep"], weights.shape)
            leaked = np.where(hidden, np.abs(weights), 0.0)
            if leaked.max(initial=0.0) > ZERO_WEIGHT:
                where = np.unravel_index(int(leaked.argmax()), leaked.shape)
                findings.append(Finding(
                    "masked_zero", False, ERROR,
                    f"{layer}: {int((leaked > ZERO_WEIGHT).sum())} masked positions get weight "
                    f"(up to {float(leaked[where]):.3g} at {_where(where)}). Masked keys "
                    f"(padding, or the future) must get exactly zero attention, or the output "
                    f"mixes in tokens the query is not allowed to see.",
                    softmax.index, layer))
                continue
        if causal:
            tq, tk = weights.shape[-2:]
            future = np.triu(np.ones((tq, tk), dtype=bool), k=1)  # key j > query i
            leaked = np.where(future, np.abs(weights), 0.0)
            if leaked.max(initial=0.0) > ZERO_WEIGHT:
                where = np.unravel_index(int(leaked.argmax()), leaked.shape)
                findings.append(Finding(
                    "masked_zero", False, ERROR,
                    f"{layer}: queries attend to future tokens (weight up to "
                    f"{float(leaked[where]):.3g} at {_where(where)}). Decoder self-attention "
                    f"needs a causal mask: in training every target token is fed at once, so "
                    f"without it a position can read the very token it is asked to predict, "
                    f"and the model learns to copy instead of to predict.",
                    softmax.index, layer))
    return findings or _passed("masked_zero", f"{checked} masked attention layers give zero "
                                              f"weight to hidden keys")


# -- numbers and shapes -------------------------------------------------------------------------
def check_finite(trace: Trace) -> list[Finding]:
    """No NaN or Inf in any tensor; the finding names the first event where one appears."""
    bad_events = []
    for event in trace.events:
        bad = {}
        for name, tensor in event.tensors.items():
            if tensor.dtype.kind == "f" and not np.isfinite(tensor).all():
                bad[name] = (int(np.isnan(tensor).sum()), int(np.isinf(tensor).sum()))
        if bad:
            bad_events.append((event, bad))
    if not bad_events:
        return _passed("finite", f"no NaN or Inf in any of the {len(trace)} events")
    first, bad = bad_events[0]
    where = ", ".join(f"{name!r} ({n} NaN, {i} Inf)" for name, (n, i) in bad.items())
    return [Finding(
        "finite", False, ERROR,
        f"NaN/Inf first appears at event {first.index + 1}, {first.phase} {first.path} "
        f"({first.op}), in {where}; {len(bad_events)} events hold NaN/Inf in all. Every op "
        f"after it reads poisoned numbers, so the loss and gradients are meaningless; look at "
        f"this op's inputs (a parameter, an overflow, a division by zero).",
        first.index, first.path)]


def _expected_forward_shapes(event: Event, trace: Trace) -> dict[str, tuple[int, ...]]:
    """Shapes the config and batch imply for a forward event's main tensors."""
    c, batch = trace.config, trace.batch
    b, t = batch.tgt_in.shape
    s = batch.src.shape[1] if batch.src is not None else t
    d, h, k, f, v = c.d_model, c.n_heads, c.d_head, c.d_ff, c.vocab_size
    facts = event.facts
    length = s if facts.rows == SOURCE else t  # this stream's sequence length
    keys = s if facts.keys == SOURCE else length  # attention key length
    op = event.op
    if op == "embedding":
        return {"ids": (b, length), "weight": (v, d), "out": (b, length, d)}
    if op == "positional":
        return {"x": (b, length, d), "pe": (length, d), "out": (b, length, d)}
    if op == "linear":
        if event.formula == "logits":
            return {"x": (b, t, d), "out": (b, t, v)}
        width = facts.widths or (d, d)  # fc1 (D, F), fc2 (F, D); k and v read the keys' stream
        return {"x": (b, length, width[0]), "w": width, "out": (b, length, width[1])}
    if op == "split_heads":
        return {"q_heads": (b, h, length, k), "k_heads": (b, h, keys, k),
                "v_heads": (b, h, keys, k)}
    maps = {"scores": "scores", "scale": "scaled", "mask": "masked", "softmax": "weights"}
    if op in maps:
        return {maps[op]: (b, h, length, keys)}
    if op == "attend":
        return {"weights": (b, h, length, keys), "context": (b, h, length, k)}
    if op == "merge_heads":
        return {"merged": (b, length, d)}
    if op in ("residual", "layernorm"):
        return {"x": (b, length, d), "out": (b, length, d)}
    if op in ("relu", "gelu"):
        return {"x": (b, length, f), "out": (b, length, f)}
    if op == "output_softmax":
        return {"logits": (b, t, v), "probs": (b, t, v)}
    if op == "cross_entropy":
        return {"targets": (b, t), "probs": (b, t, v)}
    return {}


def _gradient_of(name: str) -> str | None:
    for prefix in ("d_", "grad."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def check_shapes(trace: Trace) -> list[Finding]:
    """Forward tensors have the shapes the config implies (H heads of width K, D, F, V, the
    batch's lengths); every backward gradient has the shape of what it is the gradient of."""
    findings = []
    for event in trace.events:
        wrong = []
        if event.phase == FORWARD:
            for name, shape in _expected_forward_shapes(event, trace).items():
                if name in event.tensors and event.tensors[name].shape != shape:
                    wrong.append(f"{name!r} is {event.tensors[name].shape}, expected {shape}")
            if event.op == "mask":
                target = event.tensors["masked"].shape
                try:
                    np.broadcast_shapes(event.tensors["keep"].shape, target)
                except ValueError:
                    wrong.append(f"'keep' {event.tensors['keep'].shape} does not broadcast to "
                                 f"{target}")
        else:
            source = trace.forward_at(event.path)
            for name, grad in event.tensors.items():
                of = _gradient_of(name)  # "d_x" -> "x", "grad.w" -> "w"
                if source is not None and of in source.tensors:
                    if grad.shape != source.tensors[of].shape:
                        wrong.append(f"{name!r} is {grad.shape} but {of!r} was "
                                     f"{source.tensors[of].shape}")
        if wrong:
            findings.append(Finding(
                "shapes", False, ERROR,
                f"{event.phase} {event.path} ({event.op}): " + "; ".join(wrong) + ". A shape "
                f"that disagrees with the config (n_heads={trace.config.n_heads}, "
                f"d_head={trace.config.d_head}, d_ff={trace.config.d_ff}, "
                f"vocab_size={trace.config.vocab_size}) means tensors are being mixed up or "
                f"broadcast silently.", event.index, event.path))
    return findings or _passed("shapes", f"all {len(trace)} events have the shapes the "
                                         f"config implies")


# -- the parts a break switch turns off -----------------------------------------------------------
def check_positional(trace: Trace) -> list[Finding]:
    """The positional encoding is really added (flags the `no_positional` switch)."""
    findings = []
    events = _forward(trace, "positional")
    for event in events:
        x, out = event.tensors["x"], event.tensors["out"]
        if event.attrs.get("disabled") or np.array_equal(x, out):
            findings.append(Finding(
                "positional", False, WARNING,
                f"{event.path}: no position information is added (output equals input). "
                f"Attention is blind to order, so without positions the model sees a bag of "
                f"tokens: 'a b c' and 'c b a' look the same, and tasks such as reversing or "
                f"copying cannot be learned.", event.index, event.path))
    return findings or _passed("positional", f"{len(events)} positional encodings add position "
                                             f"vectors")


def check_scaling(trace: Trace) -> list[Finding]:
    """Scores are multiplied by 1/sqrt(d_k) (flags the `no_scaling` switch)."""
    findings = []
    events = _forward(trace, "scale")
    expected = 1.0 / np.sqrt(trace.config.d_head)
    for event in events:
        scores = event.tensors["scores"].astype(np.float64)
        scaled = event.tensors["scaled"].astype(np.float64)
        big = np.abs(scores) > 1e-6
        ratio = float(np.median(scaled[big] / scores[big])) if big.any() else expected
        if not event.attrs.get("applied", True) or not np.isclose(ratio, expected, rtol=1e-4):
            findings.append(Finding(
                "scaling", False, WARNING,
                f"{event.path}: scores are multiplied by {ratio:.4g}, not 1/sqrt(d_k) = "
                f"{expected:.4g} (d_k = {trace.config.d_head}; scaled scores have std "
                f"{float(scaled.std()):.3g}). The dot product of two d_k-wide vectors grows like "
                f"sqrt(d_k); unscaled, once training spreads q and k out, softmax saturates into "
                f"near one-hot rows whose gradients vanish, and training stalls.",
                event.index, event.path))
    return findings or _passed("scaling", f"{len(events)} attention layers scale scores by "
                                          f"1/sqrt({trace.config.d_head})")


def check_residual(trace: Trace) -> list[Finding]:
    """Residual adds compute x + f(x) (flags the `no_residual` switch)."""
    findings = []
    events = _forward(trace, "residual")
    for event in events:
        x, fx, out = event.tensors["x"], event.tensors["fx"], event.tensors["out"]
        if event.attrs.get("disabled") or (np.array_equal(out, fx) and np.any(x != 0)):
            findings.append(Finding(
                "residual", False, WARNING,
                f"{event.path}: the skip connection is cut: out = f(x) instead of x + f(x). "
                f"The sublayer's input is lost, and gradients must pass through every "
                f"sublayer instead of along the identity path, so deep stacks train far worse.",
                event.index, event.path))
    return findings or _passed("residual", f"{len(events)} residual adds compute x + f(x)")


# -- everything ------------------------------------------------------------------------------------
TRACE_CHECKS: dict[str, Callable[[Trace], list[Finding]]] = {
    "finite": check_finite,
    "shapes": check_shapes,
    "softmax_rows": check_softmax_rows,
    "attention_range": check_attention_range,
    "masked_zero": check_masked_zero,
    "positional": check_positional,
    "scaling": check_scaling,
    "residual": check_residual,
}


def run_checks(trace: Trace, model: Module | None = None,
               loss_fn: Module | None = None) -> list[Finding]:
    """Every check; the leak test and gradient checks re-run `model` (skipped without it)."""
    findings: list[Finding] = []
    for check in TRACE_CHECKS.values():
        findings.extend(check(trace))
    findings.extend(check_no_future_leak(model, trace))
    findings.extend(check_gradients(model, loss_fn, trace))
    return findings
