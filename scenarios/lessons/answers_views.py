"""Answer functions read off the explorer's number views: what 1/sqrt(d_k) changes (the
scaling view, K), and what adding the position vector does to a token's (the positional
view, P). Each computes what the view shows, with the same functions
(engine.trace.attention_stats), so the number on screen is the number judged.

Rows and positions count from 1, as on screen. Shapes: T queries, D model width.
"""
from __future__ import annotations

import numpy as np

from engine.maths.recorder import FORWARD
from engine.trace.attention_stats import cosine_matrix, head_scaling

from .problems import AnswerError


def _error(message: str) -> AnswerError:
    return AnswerError(message)


def _scaling(shown):
    if shown.attention_path is None:
        raise _error("this place shows no attention layer")
    return head_scaling(shown.trace, shown.attention_path, shown.head, shown.item)


def _raw(shown) -> bool:
    """The stage says which side of the view: scores is without the scale, else with it."""
    return shown.stage == "scores"


def scores_std(shown, args) -> float:
    rows = _scaling(shown).rows
    return rows.std_raw if _raw(shown) else rows.std_scaled


def _width(shown, args):
    h = _scaling(shown)
    width = args["width"]
    found = [w for w in h.spread() if w.width == width]
    if not found:
        widths = ", ".join(str(w.width) for w in h.spread())
        raise _error(f"the scaling view shows head widths {widths}, not {width}")
    return found[0]


def width_std(shown, args) -> float:
    w = _width(shown, args)
    return w.std_raw if _raw(shown) else w.std_scaled


def width_entropy(shown, args) -> float:
    w = _width(shown, args)
    return w.entropy_raw if _raw(shown) else w.entropy_scaled


def _positional_event(shown):
    if shown.event.op == "positional":
        return shown.event
    found = [e for e in shown.trace.events if e.phase == FORWARD and e.op == "positional"]
    if not found:
        raise _error("this model adds no position vectors (no positional step in its trace)")
    return found[0]


def token_position_cosine(shown, args) -> float:
    """cos(token embedding, token embedding + position vector) at position `position`."""
    event = _positional_event(shown)
    x = np.asarray(event.tensors["x"], dtype=np.float64)  # (B, T, D)
    out = np.asarray(event.tensors["out"], dtype=np.float64)
    item, p = min(shown.item, x.shape[0] - 1), args["position"]
    if not 1 <= p <= x.shape[1]:
        raise _error(f"position {p} is out of range: the input has positions 1 to {x.shape[1]}")
    return float(cosine_matrix(np.stack([x[item, p - 1], out[item, p - 1]]))[0, 1])
