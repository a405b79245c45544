"""The answer functions: how a question's answer is computed from the model a step shows.

A lesson never writes an answer down. It names one of these functions, and the answer is
worked out from the step's place (its trace, event, batch item, head, query row, stage and
temperature) each time the lesson is checked or shown, so a lesson stays right when the model
changes. Numbers are compared with the question's tolerance; a choice answer is a label that
must be one of the question's choices.

Positions, rows, heads and keys count from 1, as on screen.

Shapes: T queries, S keys, V vocabulary, D model width.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .answers_views import scores_std, token_position_cosine, width_entropy, width_std
from .problems import AnswerError

NUMBER, CHOICE = "number", "choice"
CHOICE_SETS = {  # choices = "NAME": computed from the place rather than listed
    "keys": "the key tokens of the attention row (distinct, in order)",
    "vocab": "the vocabulary",
    "heads": "the head numbers 1..H",
}
STATS = ("mean", "std", "min", "max", "norm")
SETTINGS = ("d_model", "n_heads", "d_ff", "n_layers", "vocab_size", "max_len", "head_width")
MAX_GREEDY_TOKENS = 64  # greedy_* answers decode at most this many tokens


@dataclass(frozen=True)
class Answer:
    """One answer function: its kind, the place it needs, the extra keys it reads."""

    name: str
    kind: str  # NUMBER | CHOICE
    needs: str  # "attention" | "event" | "model" | "output": what the place must show
    help: str  # one line for the format's documentation
    compute: Callable = field(repr=False, compare=False)  # (shown, args) -> float | str
    args: dict[str, tuple[type, str]] = field(default_factory=dict)  # key -> (type, help)


# -- attention rows -----------------------------------------------------------------------------
def attention_row(shown, stage: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(values (S,), keep (S,) bool, key tokens (S,)) of the shown query row of the shown head."""
    if shown.attention_path is None:
        raise AnswerError("this place shows no attention layer")
    amap = shown.trace.attention(shown.attention_path, shown.head, shown.item,
                                 stage or shown.stage)
    if shown.query >= amap.values.shape[0]:
        raise AnswerError(f"query row {shown.query + 1} is past the map's "
                          f"{amap.values.shape[0]} rows")
    row = np.asarray(amap.values[shown.query], dtype=np.float64)
    keep = np.ones(row.shape, bool) if amap.keep is None else np.asarray(amap.keep[shown.query])
    return row, keep, amap.cols


def row_probabilities(shown) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(p (S,), keep, key tokens): the softmax of the shown row at the shown temperature.
    At the weights stage and temperature 1 these are the recorded weights themselves; at the
    scores stage the softmax of the unscaled scores, so scaling's effect can be asked about."""
    if shown.stage == "weights" and shown.temperature == 1.0:
        p, keep, cols = attention_row(shown)
        return p, keep, cols
    stage = "scores" if shown.stage == "scores" else "masked"
    logits, keep, cols = attention_row(shown, stage)
    z = np.where(keep, logits / shown.temperature, -np.inf)
    z = z - z[keep].max()
    p = np.where(keep, np.exp(z), 0.0)
    return p / p.sum(), keep, cols


def _top_index(shown) -> tuple[int, list[str]]:
    p, keep, cols = row_probabilities(shown)
    return int(np.argmax(np.where(keep, p, -np.inf))), cols


def top_key(shown, args) -> str:
    index, cols = _top_index(shown)
    return cols[index]


def top_key_position(shown, args) -> float:
    return float(_top_index(shown)[0] + 1)


def top_weight(shown, args) -> float:
    p, keep, _ = row_probabilities(shown)
    return float(p[keep].max())


def row_entropy(shown, args) -> float:
    p, keep, _ = row_probabilities(shown)
    p = p[keep & (p > 0)]
    return float(-(p * np.log(p)).sum())


def hidden_keys(shown, args) -> float:
    _, keep, _ = attention_row(shown)
    return float((~keep).sum())


def key_weight(shown, args) -> float:
    p, _, cols = row_probabilities(shown)
    key = args["key"]
    if not 1 <= key <= len(cols):
        raise AnswerError(f"key {key} is out of range: the row has keys 1 to {len(cols)}")
    return float(p[key - 1])


def sharpest_head(shown, args) -> float:
    """The head (from 1) whose shown row has the largest top weight."""
    tops = [top_weight(replace(shown, head=h), args) for h in range(shown.model.config.n_heads)]
    return float(int(np.argmax(tops)) + 1)


# -- the model ----------------------------------------------------------------------------------
def setting(shown, args) -> float:
    c = shown.model.config
    name = args["name"]
    if name == "head_width":
        return float(c.d_model // c.n_heads)
    return float(getattr(c, name))


def scale(shown, args) -> float:
    """The factor the scores were multiplied by: 1/sqrt(d_k), or 1 with scaling switched off."""
    if shown.attention_path is None:
        raise AnswerError("this place shows no attention layer")
    event = shown.trace.events[shown.trace.find_path(f"{shown.attention_path}.scale")]
    return float(event.attrs["scale"]) if event.attrs.get("applied", True) else 1.0


def _slice(shown, args) -> np.ndarray:
    """The shown tensor cut to 2-D as the tensor view cuts it: [item, head] of 4-D, [item]
    of 3-D; `row` (from 1) keeps one row."""
    name = shown.tensor
    if name is None:
        raise AnswerError(f"event {shown.event.path} shows no tensor")
    a = np.asarray(shown.event.tensors[name], dtype=np.float64)
    if a.ndim == 4:
        a = a[min(shown.item, a.shape[0] - 1), min(shown.head, a.shape[1] - 1)]
    elif a.ndim == 3:
        a = a[min(shown.item, a.shape[0] - 1)]
    a = np.atleast_2d(a)
    row = args.get("row")
    if row is not None:
        if not 1 <= row <= a.shape[0]:
            raise AnswerError(f"row {row} is out of range: {name} has rows 1 to {a.shape[0]}")
        a = a[row - 1:row]
    return a


def tensor_stat(shown, args) -> float:
    a = _slice(shown, args)
    stat = args["stat"]
    if stat == "norm":
        return float(np.sqrt((a * a).sum()))
    return float(getattr(np, stat)(a))


def tensor_dim(shown, args) -> float:
    if shown.tensor is None:
        raise AnswerError(f"event {shown.event.path} shows no tensor")
    a = np.asarray(shown.event.tensors[shown.tensor])
    axis = args["axis"]
    if not 1 <= axis <= a.ndim:
        raise AnswerError(f"axis {axis} is out of range: {shown.tensor} has axes 1 to {a.ndim}")
    return float(a.shape[axis - 1])


def _positions(shown, args) -> tuple[np.ndarray, int, int]:
    from engine.maths.layers.embedding import sinusoid_table

    c = shown.model.config
    table = sinusoid_table(c.max_len, c.d_model)
    if c.positional == "learned":
        state = shown.model.state_dict()
        table = next(v for k, v in state.items() if k.endswith(("pos_emb.weight", "pos_emb.table")))
    p, q = args["position"], args.get("other", 1)
    for value in (p, q):
        if not 1 <= value <= len(table):
            raise AnswerError(f"position {value} is out of range: the model has positions 1 to "
                              f"{len(table)}")
    return np.asarray(table, dtype=np.float64), p - 1, q - 1


def position_similarity(shown, args) -> float:
    table, p, q = _positions(shown, args)
    a, b = table[p], table[q]
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def nearest_position(shown, args) -> float:
    table, p, _ = _positions(shown, args)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    similarity = unit @ unit[p]
    similarity[p] = -np.inf
    return float(int(np.argmax(similarity)) + 1)


# -- output, loss and training ------------------------------------------------------------------
def _next_distribution(shown) -> np.ndarray:
    event = next(e for e in shown.trace.events if e.path == "loss.softmax")
    probs = np.asarray(event.tensors["probs"], dtype=np.float64)  # (B, T, V)
    item = min(shown.item, probs.shape[0] - 1)
    if shown.query >= probs.shape[1]:
        raise AnswerError(f"position {shown.query + 1} is past the {probs.shape[1]} outputs")
    return probs[item, shown.query]


def next_token(shown, args) -> str:
    tok = shown.scenario.tokenizer
    return tok.label(int(np.argmax(_next_distribution(shown))))


def next_prob(shown, args) -> float:
    return float(_next_distribution(shown).max())


def loss(shown, args) -> float:
    return float(shown.trace.loss)


def uniform_loss(shown, args) -> float:
    return math.log(shown.model.config.vocab_size)


def loss_below_entropy(shown, args) -> str:
    entropy = shown.scenario.entropy
    if entropy is None:
        raise AnswerError(f"scenario {shown.scenario.name} does not know its data's entropy "
                          f"(tiny-lm does)")
    return "yes" if shown.trace.loss < entropy else "no"


def _greedy(shown) -> tuple[str, str]:
    """(the model's greedy output for the traced input, the right answer)."""
    from scenarios.predict import complete

    if shown.scenario.layout != "pairs":
        raise AnswerError("greedy answers need an input with one right output (reverse, sort, "
                          "copy): a language model's continuation has no single right answer")
    completion = complete(shown.model, shown.scenario.tokenizer, shown.scenario.layout,
                          shown.input_text, max_tokens=MAX_GREEDY_TOKENS, greedy=True)
    return completion.text, shown.scenario.decode(shown.trace.batch.tgt_out[0])


def greedy_correct(shown, args) -> str:
    output, right = _greedy(shown)
    return "yes" if output == right else "no"


def greedy_right_tokens(shown, args) -> float:
    output, right = _greedy(shown)
    tok = shown.scenario.tokenizer
    return float(sum(a == b for a, b in zip(tok.encode(output), tok.encode(right))))


def gradcheck_error(shown, args) -> float:
    return _gradcheck(shown, args).max_rel_error


def gradcheck_passes(shown, args) -> str:
    return "yes" if _gradcheck(shown, args).ok else "no"


def _gradcheck(shown, args):
    from engine.trace.gradcheck import gradient_check

    name = args.get("param") or _event_param(shown)
    try:
        return gradient_check(shown.model, shown.loss_fn, shown.trace, name, n_samples=8)
    except KeyError as error:
        raise AnswerError(str(error).strip("\"'")) from None


def grad_norm(shown, args) -> float:
    name = args.get("param") or _event_param(shown)
    grads = shown.trace.param_grads()
    if name not in grads:
        raise AnswerError(f"no gradient for parameter {name!r}")
    return float(np.linalg.norm(grads[name].astype(np.float64)))


def _event_param(shown) -> str:
    params = shown.event.attrs.get("params") or {}
    if not params:
        raise AnswerError(f"event {shown.event.path} has no parameters: give param = "
                          f"\"dotted.name\" or place the step on a linear or layernorm event")
    return next(iter(params.values()))


_INT, _STR = (int, "a whole number"), (str, "text")
ANSWERS: dict[str, Answer] = {a.name: a for a in (
    Answer("top_key", CHOICE, "attention", "the key token with the largest weight in the row",
           top_key),
    Answer("top_key_position", NUMBER, "attention", "its position (from 1)", top_key_position),
    Answer("top_weight", NUMBER, "attention", "the largest weight in the row", top_weight),
    Answer("row_entropy", NUMBER, "attention",
           "the row's softmax entropy in nats (scores stage: without 1/sqrt(d_k))", row_entropy),
    Answer("hidden_keys", NUMBER, "attention", "how many keys the mask hides from the row",
           hidden_keys),
    Answer("key_weight", NUMBER, "attention", "the weight on key `key` (from 1)", key_weight,
           {"key": (int, "the key's position, from 1")}),
    Answer("sharpest_head", NUMBER, "attention",
           "the head (from 1) whose row has the largest top weight", sharpest_head),
    Answer("setting", NUMBER, "model", f"a model setting `name` ({', '.join(SETTINGS)})",
           setting, {"name": (str, "one of " + ", ".join(SETTINGS))}),
    Answer("scale", NUMBER, "attention", "the factor the scores are multiplied by", scale),
    Answer("scores_std", NUMBER, "attention",
           "the spread (std) of the head's visible scores (scaling view; stage scores: "
           "without 1/sqrt(d_k))", scores_std),
    Answer("width_std", NUMBER, "attention",
           "the spread of random scores at head width `width` with the head's q, k spreads "
           "(scaling view; stage scores: without 1/sqrt(d_k))", width_std,
           {"width": (int, "a head width d_k the scaling view lists: 4, 8, 16, 32, 64")}),
    Answer("width_entropy", NUMBER, "attention",
           "the mean softmax entropy of such random rows at head width `width` (stage scores: "
           "without 1/sqrt(d_k))", width_entropy,
           {"width": (int, "a head width d_k the scaling view lists: 4, 8, 16, 32, 64")}),
    Answer("tensor_stat", NUMBER, "event",
           f"`stat` ({', '.join(STATS)}) of the shown tensor's slice, or of its row `row`",
           tensor_stat, {"stat": (str, "one of " + ", ".join(STATS)),
                         "row": (int, "a row of the slice, from 1 (default: all rows)")}),
    Answer("tensor_dim", NUMBER, "event", "the size of the shown tensor's axis `axis` (from 1)",
           tensor_dim, {"axis": (int, "an axis, from 1")}),
    Answer("position_similarity", NUMBER, "model",
           "cosine similarity of the vectors of positions `position` and `other`",
           position_similarity, {"position": (int, "a position, from 1"),
                                 "other": (int, "another position, from 1 (default 1)")}),
    Answer("nearest_position", NUMBER, "model",
           "the position whose vector is most like position `position`'s", nearest_position,
           {"position": (int, "a position, from 1")}),
    Answer("token_position_cosine", NUMBER, "model",
           "cosine of the token embedding at position `position` and it plus the position "
           "vector (positional view)", token_position_cosine,
           {"position": (int, "a position, from 1")}),
    Answer("next_token", CHOICE, "output", "the likeliest next token after query row `query`",
           next_token),
    Answer("next_prob", NUMBER, "output", "that token's probability", next_prob),
    Answer("loss", NUMBER, "model", "the loss of the traced input", loss),
    Answer("uniform_loss", NUMBER, "model", "ln(V): the loss of a uniform guess", uniform_loss),
    Answer("loss_below_entropy", CHOICE, "model",
           "yes/no: the loss is below the data's entropy (what no honest model can reach)",
           loss_below_entropy),
    Answer("greedy_correct", CHOICE, "model",
           "yes/no: greedy decoding of the input gives the right answer", greedy_correct),
    Answer("greedy_right_tokens", NUMBER, "model",
           "how many tokens of the greedy output are right", greedy_right_tokens),
    Answer("gradcheck_error", NUMBER, "event",
           "the largest relative error of a gradient check of `param` (default: the event's)",
           gradcheck_error, {"param": (str, "a dotted parameter name")}),
    Answer("gradcheck_passes", CHOICE, "event",
           "yes/no: the gradient check of `param` passes", gradcheck_passes,
           {"param": (str, "a dotted parameter name")}),
    Answer("grad_norm", NUMBER, "event", "the norm of the gradient of `param`", grad_norm,
           {"param": (str, "a dotted parameter name")}),
)}
ARG_KEYS = {key: spec for a in ANSWERS.values() for key, spec in a.args.items()}
REQUIRED_ARGS = {"key_weight": ("key",), "setting": ("name",), "tensor_stat": ("stat",),
                 "tensor_dim": ("axis",), "position_similarity": ("position",),
                 "nearest_position": ("position",), "width_std": ("width",),
                 "width_entropy": ("width",), "token_position_cosine": ("position",)}


def choice_set(name: str, shown) -> list[str]:
    """The labels of a computed choice set (CHOICE_SETS)."""
    if name == "keys":
        _, _, cols = attention_row(shown)
        return list(dict.fromkeys(cols))
    if name == "vocab":
        tok = shown.scenario.tokenizer
        return [tok.label(i) for i in range(len(tok.vocab))]
    return [str(h) for h in range(1, shown.model.config.n_heads + 1)]
