"""What each recorded operation computes: its formula, its shapes in this trace, and why.

    explain(event)      -> Explanation: key, title, formula (Unicode and ASCII), the shape line
                           with this trace's numbers, and two or three plain sentences
    formula(event, ascii) -> just the formula
    KEYS                -> every formula key with a written entry, forward, backward, update

The formula is the general rule; `shapes` fills in the real numbers of the event, read from
its tensors and attrs (sqrt(d_k), dropout p, eps, the embedding scale, the softmax axis) and
says when a break switch turned the step off, in which case the formula and text change too.
Everything except `formula_unicode` is plain ASCII, so an ASCII-only terminal shows it as is.
An unknown key gets a generic explanation naming the op; `explain` never raises.

Shapes: B batch, T queries, S keys, D model width, H heads, K head width (D / H),
F feed-forward width, V vocabulary.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .formulas_backward import BACKWARD, BACKWARD_SHAPES, Entry, backward_variant, dims, num, root
from .formulas_update import UPDATE, UPDATE_SHAPES, update_variant
from ..maths.recorder import FORWARD, UPDATE as UPDATE_PHASE, Event


@dataclass(frozen=True)
class Explanation:
    """Everything the formula panel shows beside one event."""

    key: str  # formula key: "softmax", "softmax.backward", ...
    title: str  # a few words: "Softmax over keys"
    formula_unicode: str  # the rule with math symbols: "scores = Q Kᵀ"
    formula_ascii: str  # the same in plain ASCII: "scores = Q K^T"
    shapes: str  # this event's numbers, one or more ASCII lines: "... : [2,2,4,8] x ... -> ..."
    text: str  # two or three plain sentences: what the step does and why
    variant: str = ""  # "off" (a switch disabled the step), "tied", "queries", or ""
    generic: bool = False  # True when no entry is written for this key


FORWARD_ENTRIES: dict[str, Entry] = {
    "embedding": Entry(
        "Token embedding", "out[b,t] = s · E[ids[b,t]]   (s = √D or 1)",
        "out[b,t] = s * E[ids[b,t]]   (s = sqrt(D) or 1)",
        "Each token id picks one row of the embedding table E, turning a list of ids into a list "
        "of vectors the network can compute with. The rows are multiplied by a fixed scale s "
        "(sqrt(D), as in the original paper, or 1) so they come out about as large as the "
        "position vectors added next. E is learned like any weight."),
    "positional": Entry(
        "Positional encoding", "out = x + P[0:T]", "out = x + P[0:T]",
        "Attention on its own treats the tokens as an unordered set, so each position t gets its "
        "own vector P[t] added to its token vector. The sinusoidal table is fixed: each pair of "
        "columns is a sine and a cosine of a different frequency, giving every position a "
        "distinct pattern; a learned table is instead trained like a weight."),
    "positional:off": Entry(
        "Positional encoding (switched off)", "out = x   (P not added)", "out = x   (P not added)",
        "The no_positional break switch is on, so no position vectors are added and x passes "
        "through unchanged. The model now sees the same vectors whatever order the tokens come "
        "in, so tasks that depend on order suffer."),
    "dropout": Entry(
        "Dropout", "out = x ⊙ m / (1 − p),  m ∈ {0,1},  P(m = 0) = p",
        "out = x * m / (1 - p),  m in {0,1},  P(m = 0) = p",
        "While training, each element is zeroed at random with probability p and the survivors "
        "are scaled up by 1/(1 - p), so every element keeps its expected value. This stops the "
        "network from leaning on any single unit, which reduces overfitting."),
    "dropout:off": Entry(
        "Dropout (inactive)", "out = x", "out = x",
        "Dropout is inactive here (evaluation mode, or p = 0), so the input passes through "
        "untouched. Random zeroing is only a training-time regulariser; without it the step is "
        "exactly what the model does when it generates."),
    "residual": Entry(
        "Residual add", "out = x + f(x)", "out = x + f(x)",
        "The sublayer's output f(x) is added to its own input x, so the sublayer only has to "
        "learn a correction to x rather than a whole new representation. The plain addition also "
        "gives gradients a direct road back to earlier layers, which is what lets deep stacks "
        "train."),
    "residual:off": Entry(
        "Residual add (switched off)", "out = f(x)   (skip path cut)",
        "out = f(x)   (skip path cut)",
        "The no_residual break switch is on, so only f(x) comes out and the input x is dropped. "
        "Every gradient must now squeeze back through every sublayer, and the model trains much "
        "worse, the more so the more layers it has."),
    "layernorm": Entry(
        "Layer normalisation",
        "out = (x − μ) / √(σ² + ε) · γ + β,   μ, σ² over the last axis",
        "out = (x - mean) / sqrt(var + eps) * gamma + beta,   mean, var over the last axis",
        "Each position's vector is shifted to mean 0 and scaled to variance 1 across its D "
        "features, then stretched by gamma and shifted by beta, both learned per feature. This "
        "keeps activations at a steady size from layer to layer, which makes training much less "
        "touchy. The variance divides by D and eps sits inside the square root, as in PyTorch."),
    "linear": Entry(
        "Linear layer", "out = x W + b", "out = x W + b",
        "Every position's vector is multiplied by the same weight matrix W and shifted by the "
        "bias b: a learned way of mixing input features into new ones. The batch and position "
        "axes just ride along, so one matrix product handles every position at once."),
    "logits": Entry(
        "Output projection (logits)", "logits = x W + b,   one score per word of the vocabulary",
        "logits = x W + b,   one score per word of the vocabulary",
        "The final vectors are projected to one score per vocabulary entry: the larger a token's "
        "logit, the more the model believes it comes next. These raw scores are not "
        "probabilities yet; the softmax in the loss turns them into a distribution."),
    "logits:tied": Entry(
        "Tied output projection (logits)", "logits = x Eᵀ", "logits = x E^T",
        "The output projection reuses the token embedding table E, transposed, so a token's "
        "score is the dot product of the final vector with that token's own embedding. Sharing "
        "saves V*D parameters, and both uses train the same rows."),
    "split_heads": Entry(
        "Split into heads", "(B,T,D) → (B,T,H,K) → (B,H,T,K),   K = D / H",
        "(B,T,D) -> (B,T,H,K) -> (B,H,T,K),   K = D / H",
        "The D features of q, k and v are cut into H slices of width K, one per head, and the "
        "head axis is moved next to the batch axis. No number changes; it is a reshape and a "
        "transpose, so that every head can attend in its own way while all run in one product."),
    "scores": Entry(
        "Attention scores", "scores = Q Kᵀ", "scores = Q K^T",
        "For each head, every query vector is compared with every key vector by a dot product, "
        "giving a table with one row per query and one column per key. A large score means the "
        "query and key point the same way, so the query will look hard at that key's position."),
    "scale": Entry(
        "Scale by 1/sqrt(d_k)", "scaled = scores / √d_k", "scaled = scores / sqrt(d_k)",
        "The scores are divided by the square root of the head width d_k. A dot product of d_k "
        "random terms grows like sqrt(d_k), and without this the softmax would see large numbers, "
        "put nearly all weight on one key, and pass back almost no gradient."),
    "scale:off": Entry(
        "Scale (switched off)", "scaled = scores   (no 1/√d_k)",
        "scaled = scores   (no 1/sqrt(d_k))",
        "The no_scaling break switch is on, so the scores pass through unscaled. With wide heads "
        "they are large, the softmax saturates into near one-hot rows, and its gradient almost "
        "vanishes, so learning slows or stalls."),
    "mask": Entry(
        "Mask", "masked = keep ? scaled : −10⁹", "masked = where(keep, scaled, -1e9)",
        "Scores a query must not see get a huge negative value: padding keys, and in decoder "
        "self-attention every key after the query (the causal mask). After the softmax they get "
        "weight zero. A large finite fill is used instead of minus infinity, so no row becomes "
        "NaN; a query with every key masked (padding at the start of a row) attends to "
        "nothing: its weights are all zero."),
    "softmax": Entry(
        "Softmax over keys", "w_ij = exp(s_ij) / Σ_j′ exp(s_ij′)",
        "w[i,j] = exp(s[i,j]) / sum_j' exp(s[i,j'])",
        "Each query's row of scores becomes positive weights that add up to 1, so the query "
        "spreads a fixed budget of attention over the keys. The row maximum is subtracted first "
        "so exp cannot overflow; that does not change the result."),
    "softmax:queries": Entry(
        "Softmax over queries (wrong axis)", "w_ij = exp(s_ij) / Σ_i′ exp(s_i′j)",
        "w[i,j] = exp(s[i,j]) / sum_i' exp(s[i',j])",
        "The softmax_wrong_axis break switch is on, so each key's column is normalised over the "
        "queries instead of each query's row over the keys. A query's weights no longer sum to "
        "1, and in a decoder later positions leak into earlier ones, so what is learned fails "
        "at generation time."),
    "attend": Entry(
        "Weighted sum of values", "context = w V", "context = weights V",
        "Each query's output is the average of the value vectors, weighted by its row of "
        "attention weights. This is where information actually moves between positions: a query "
        "gathers mostly from the keys it scored highest."),
    "merge_heads": Entry(
        "Merge heads", "(B,H,T,K) → (B,T,H,K) → (B,T,D)", "(B,H,T,K) -> (B,T,H,K) -> (B,T,D)",
        "The heads' outputs are put side by side again, undoing the split, so each position has "
        "one vector of width D = H*K. The output projection that follows mixes what the "
        "different heads found."),
    "relu": Entry(
        "ReLU", "out = max(x, 0)", "out = max(x, 0)",
        "Negative values become zero and positive values pass unchanged. This bend is what makes "
        "the feed-forward network more than one linear map: without it, stacked linear layers "
        "would collapse into a single one."),
    "gelu": Entry(
        "GELU (tanh form)", "out = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))",
        "out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        "A smooth relative of ReLU: large positive values pass almost unchanged, large negative "
        "values go to about zero, and small negative values leak through a little. The curve "
        "has no kink at 0, which gives smoother gradients; GPT-2 and BERT use it."),
    "output_softmax": Entry(
        "Softmax over the vocabulary", "p_v = exp(z_v) / Σ_u exp(z_u)",
        "p[v] = exp(z[v]) / sum_u exp(z[u])",
        "Each position's logits become a probability distribution over the vocabulary: positive "
        "numbers that sum to 1. The loss then compares it with the token that should come next."),
    "cross_entropy": Entry(
        "Cross-entropy loss",
        "loss = −(1/N) Σ_n Σ_v q_nv log p_nv,   q = (1 − ε) onehot(y) + ε/V",
        "loss = -(1/N) sum_n sum_v q[n,v] log p[n,v],   q = (1 - eps) onehot(y) + eps/V",
        "At each counted position the loss is minus the log of the probability given to the "
        "right token, so a confident right answer costs almost nothing and a confident wrong one "
        "costs a lot. Padding is skipped and the sum is averaged over the N real tokens. Label "
        "smoothing eps spreads a little target mass over every token, which discourages "
        "overconfidence."),
}


def _embedding(e: Event) -> str:
    ids, w, out = e.tensors["ids"], e.tensors["weight"], e.tensors["out"]
    s, d = float(e.attrs.get("scale", 1.0)), w.shape[1]
    how = ("E[ids]" if s == 1.0 else f"E[ids] * sqrt({d})" if math.isclose(s, math.sqrt(d))
           else f"E[ids] * {num(s)}")
    return (f"out = {how} : ids {dims(ids)} pick rows of E {dims(w)} -> {dims(out)}  "
            f"(scale {num(s)})")


def _positional(e: Event) -> str:
    x, pe, out = e.tensors["x"], e.tensors["pe"], e.tensors["out"]
    if e.attrs.get("disabled"):
        return (f"out = x : {dims(x)} -> {dims(out)}  "
                f"(no_positional: P[0:{x.shape[1]}] {dims(pe)} not added)")
    table = "learned table" if e.attrs.get("kind") == "learned" else "fixed sinusoidal table"
    return f"out = x + P[0:{x.shape[1]}] : {dims(x)} + {dims(pe)} -> {dims(out)}  ({table})"


def _dropout(e: Event) -> str:
    x, out, p = e.tensors["x"], e.tensors["out"], e.attrs.get("p", "p")
    mask = e.tensors.get("mask")
    if mask is None or not e.attrs.get("active", True):
        return f"out = x : {dims(x)} -> {dims(out)}  (p = {p}, inactive: evaluation mode or p = 0)"
    zeroed = int(np.count_nonzero(mask == 0))
    return (f"out = x * m / (1 - {p}) : {dims(x)} -> {dims(out)}  ({zeroed} of {mask.size} "
            f"zeroed, the rest times {num(1 / (1 - float(p)))})")


def _residual(e: Event) -> str:
    x, fx, out = e.tensors["x"], e.tensors["fx"], e.tensors["out"]
    if e.attrs.get("disabled"):
        return f"out = f(x) : {dims(fx)} -> {dims(out)}  (no_residual: x {dims(x)} is not added)"
    return f"out = x + f(x) : {dims(x)} + {dims(fx)} -> {dims(out)}"


def _layernorm(e: Event) -> str:
    t = e.tensors
    x, eps = t["x"], e.attrs.get("eps", "eps")
    return (f"out = (x - mean) / sqrt(var + {eps}) * gamma + beta : {dims(x)} -> {dims(t['out'])}\n"
            f"mean, rstd {dims(t['mean'])}: over D = {x.shape[-1]} features at each of "
            f"{math.prod(x.shape[:-1])} positions; gamma, beta {dims(t['gamma'])}")


def _linear(e: Event) -> str:
    t = e.tensors
    name = "logits" if e.formula == "logits" else "out"
    if "embedding" in e.facts.params:
        return (f"logits = x E^T : {dims(t['x'])} x {dims(t['w'])} -> {dims(t['out'])}  "
                f"(E {dims(t['w'].T)} is the token embedding)")
    bias = f" + {dims(t['b'])}" if "b" in t else ""
    rule = "x W + b" if "b" in t else "x W"
    line = f"{name} = {rule} : {dims(t['x'])} x {dims(t['w'])}{bias} -> {dims(t['out'])}"
    return line + (f"  (V = {t['out'].shape[-1]} scores per position)" if name == "logits" else "")


def _split(e: Event) -> str:
    t = e.tensors
    q, qh, k, kh = t["q"], t["q_heads"], t["k"], t["k_heads"]
    b, h, n, width = qh.shape
    kv = "k, v the same" if k.shape == q.shape else f"k, v {dims(k)} -> {dims(kh)}"
    return (f"q {dims(q)} -> [{b},{n},{h},{width}] -> {dims(qh)}; {kv}  "
            f"(H = {h} heads of K = {q.shape[-1]}/{h} = {width})")


def _scores(e: Event) -> str:
    q, k, s = e.tensors["q"], e.tensors["k"], e.tensors["scores"]
    k_t = k.shape[:-2] + (k.shape[-1], k.shape[-2])
    return (f"scores = Q K^T : {dims(q)} x {dims(k_t)} -> {dims(s)}  "
            f"({s.shape[-2]} queries x {s.shape[-1]} keys per head)")


def _scale(e: Event) -> str:
    s, out = e.tensors["scores"], e.tensors["scaled"]
    scale = float(e.attrs.get("scale", 1.0))
    if not e.attrs.get("applied", True):
        return (f"scaled = scores : {dims(s)} -> {dims(out)}  "
                f"(no_scaling: the / sqrt(d_k) is skipped)")
    return f"scaled = scores / {root(scale)} = scores * {num(scale)} : {dims(s)} -> {dims(out)}"


def _mask(e: Event) -> str:
    t = e.tensors
    scaled, keep, out = t["scaled"], t["keep"], t["masked"]
    hidden = int(np.count_nonzero(~np.broadcast_to(keep, scaled.shape)))
    kinds = [k for k, on in (("keys after each query", keep.shape[-2] > 1),
                             ("padding keys", keep.shape[0] > 1 or keep.shape[-2] == 1)) if on]
    fill = f"{float(e.attrs.get('fill', -1e9)):g}".replace("e+0", "e").replace("e+", "e")
    return (f"masked = where(keep, scaled, {fill}) : {dims(scaled)}, "
            f"keep {dims(keep)} -> {dims(out)}  ({hidden} of {scaled.size} hidden: "
            f"{' and '.join(kinds)})")


def _softmax(e: Event) -> str:
    x, w = e.tensors["masked"], e.tensors["weights"]
    axis = int(e.attrs.get("axis", -1))
    n = x.shape[axis]
    over = {x.ndim - 1: f"over the {n} keys: each row sums to 1",
            x.ndim - 2: f"softmax_wrong_axis: over the {n} queries, each column sums to 1"}
    return (f"weights = softmax(masked, axis={axis}) : {dims(x)} -> {dims(w)}  "
            f"({over.get(axis % x.ndim, f'over the {n} entries of axis {axis}')})")


def _attend(e: Event) -> str:
    t = e.tensors
    return f"context = weights V : {dims(t['weights'])} x {dims(t['v'])} -> {dims(t['context'])}"


def _merge(e: Event) -> str:
    c, m = e.tensors["context"], e.tensors["merged"]
    b, h, n, k = c.shape
    return f"{dims(c)} -> [{b},{n},{h},{k}] -> {dims(m)}  (H = {h} heads x K = {k} = D = {h * k})"


def _activation(e: Event) -> str:
    x, out = e.tensors["x"], e.tensors["out"]
    if e.op == "relu":
        return (f"out = max(x, 0) : {dims(x)} -> {dims(out)}  "
                f"({int(np.count_nonzero(x <= 0))} of {x.size} values zeroed)")
    return (f"out = gelu(x) : {dims(x)} -> {dims(out)}  "
            f"({int(np.count_nonzero(x < 0))} of {x.size} inputs negative, mostly squashed)")


def _output_softmax(e: Event) -> str:
    z, p = e.tensors["logits"], e.tensors["probs"]
    return f"probs = softmax(logits) over V = {z.shape[-1]} : {dims(z)} -> {dims(p)}"


def _cross_entropy(e: Event) -> str:
    t, a = e.tensors, e.attrs
    eps, ignore = a.get("label_smoothing", 0.0), a.get("ignore_id")
    smooth = f"label smoothing {eps}" if eps else "no label smoothing"
    skip = f"targets equal to {ignore} ignored" if ignore is not None else "nothing ignored"
    return (f"loss = mean over {a.get('n_tokens', 'N')} tokens of -sum_v q log p : "
            f"probs {dims(t['probs'])}, targets {dims(t['targets'])} -> {num(t['loss'])}  "
            f"({smooth}; {skip})")


FORWARD_SHAPES: dict[str, Callable[[Event], str]] = {
    "embedding": _embedding, "positional": _positional, "dropout": _dropout,
    "residual": _residual, "layernorm": _layernorm, "linear": _linear, "logits": _linear,
    "split_heads": _split, "scores": _scores, "scale": _scale, "mask": _mask,
    "softmax": _softmax, "attend": _attend, "merge_heads": _merge, "relu": _activation,
    "gelu": _activation, "output_softmax": _output_softmax, "cross_entropy": _cross_entropy,
}

FORWARD_KEYS: tuple[str, ...] = tuple(k for k in FORWARD_ENTRIES if ":" not in k)
UPDATE_KEYS: tuple[str, ...] = tuple(k for k in UPDATE if ":" not in k)  # "adam.update", ...
KEYS: tuple[str, ...] = (FORWARD_KEYS + tuple(f"{k}.backward" for k in FORWARD_KEYS)
                         + UPDATE_KEYS)
ENTRIES: dict[str, Entry] = {**FORWARD_ENTRIES, **BACKWARD, **UPDATE}  # "key" and "key:variant"
SHAPES: dict[str, Callable[[Event], str]] = {**FORWARD_SHAPES, **BACKWARD_SHAPES, **UPDATE_SHAPES}
VARIANTS: dict[str, Callable[[Event], str]] = {UPDATE_PHASE: update_variant}  # else backward's


def _forward_variant(e: Event) -> str:
    a = e.attrs
    if a.get("disabled") or a.get("applied") is False or a.get("active") is False:
        return "off"
    if e.formula == "softmax" and "masked" in e.tensors:
        ndim = e.tensors["masked"].ndim
        return "queries" if int(a.get("axis", -1)) % ndim != ndim - 1 else ""
    if e.formula == "logits" and "embedding" in e.facts.params:
        return "tied"
    return ""


def _ascii(s: str) -> str:
    return s.encode("ascii", "replace").decode("ascii")


def _tensor_list(e: Event) -> str:
    return _ascii(", ".join(f"{name} {dims(a)}" for name, a in e.tensors.items()) or "no tensors")


def _key(e: Event) -> str:
    return e.formula or (e.op if e.phase == FORWARD else f"{e.op}.backward")


def explain(event: Event) -> Explanation:
    """The explanation of one event; a generic one (generic=True) for a key with no entry."""
    key = _key(event)
    entry = ENTRIES.get(key)
    if entry is None:
        op = _ascii(event.op or key)
        return Explanation(
            key, f"{op} ({event.phase})", event.op or key, op, _tensor_list(event),
            f"No explanation is written for the '{op}' step yet. Its tensors are listed with "
            f"their shapes.", generic=True)
    try:
        variant = (_forward_variant if event.phase == FORWARD
                   else VARIANTS.get(event.phase, backward_variant))(event)
        shapes = SHAPES[key](event) if key in SHAPES else _tensor_list(event)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError, AttributeError):
        variant, shapes = "", _tensor_list(event)  # an event unlike the engine's: still explain
    entry = ENTRIES.get(f"{key}:{variant}", entry) if variant else entry
    return Explanation(key, entry.title, entry.unicode, entry.ascii, _ascii(shapes), entry.text,
                       variant)


def formula(event: Event, ascii: bool = False) -> str:
    """The formula of `event`, in plain ASCII or with Unicode math symbols."""
    found = explain(event)
    return found.formula_ascii if ascii else found.formula_unicode
