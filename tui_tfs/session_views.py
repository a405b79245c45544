"""What the explorer's views show of the current event, and the choices behind it.

`ViewState` holds the choices (which tensor, its gradient or not, batch item, head, attention
stage, query row, temperature, one shade scale shared across maps or not); `SessionViews`, mixed
into `Session`, answers the views' questions from the session's trace and cursor: which tensors
an event recorded and which one is shown, a 2-D slice of it with token (or vocabulary) labels,
the gradient counterpart of a tensor, the attention map at the cursor and its shade scale, the
positional and embedding tables. None of it changes the trace.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import numpy as np

from engine.maths.facts import TARGET
from engine.maths.layers.embedding import sinusoid_table
from engine.maths.recorder import FORWARD, Event
from engine.trace.attention_stats import HeadScaling, head_scaling, informative_row
from engine.trace.trace import ATTENTION_STAGES, AttentionMap
from scenarios.vocab_labels import vocab_labels

from .shading import Scale

STAGES = tuple(ATTENTION_STAGES)  # scores, scaled, masked, weights
ATTENTION_TENSORS = {"scores", "scaled", "masked", "weights", "keep"}  # (.., T, S) maps
PROBABILITY_TENSORS = {"weights", "probs"}  # softmax outputs: shaded on the fixed 0..1 scale
SHARED_ATTENTION = "shared across heads/layers"


class SessionError(ValueError):
    """Something the user asked for that cannot be done; the message says why."""


@dataclass(frozen=True)
class ViewState:
    """What the views show of the current event. A value: a choice is a new ViewState
    (`dataclasses.replace`), so the explorer sees that something changed by comparing two."""

    tensor: str | None = None  # name of the tensor shown (a key of event.tensors)
    gradient: bool = False  # show the gradient counterpart of `tensor` instead
    numbers: bool = False  # numbers instead of shades
    item: int = 0  # batch item for 3-D and 4-D tensors and for attention
    head: int = 0  # head for 4-D tensors and attention
    stage: str = "weights"  # attention stage: scores | scaled | masked | weights
    attention_path: str | None = None  # attention layer shown when the cursor is not in one
    query: int = 0  # query row for the temperature view
    query_chosen: bool = False  # j/J or a lesson chose it; else the view picks a telling row
    lens_start: int = 0  # the logit lens's first position shown (0-based; < > page)
    temperature: float = 1.0
    shared_scale: bool = False  # one shade scale across heads and layers (and a tensor's slices)


class SessionViews:
    """The view half of `Session`. It reads the session's `view`, `trace`, `cursor`, `event`,
    `model`, `scenario` and `batch_size`. What an event means (its token streams, attention
    kind, parameters) it reads from the event's facts, never from its path."""

    # -- tensors ------------------------------------------------------------------------------------
    def tensor_names(self, event: Event | None = None) -> list[str]:
        event = event or self.event
        return [n for n, t in event.tensors.items() if t.dtype.kind in "fiub"]

    def _fix_tensor(self) -> None:
        names = self.tensor_names()
        if self.view.tensor not in names:
            preferred = [n for n in ("weights", "out", "d_x", "masked", "scaled", "scores", "probs",
                                     "context", "merged", "d_logits") if n in names]
            self.view = replace(self.view, tensor=preferred[0] if preferred else (
                names[-1] if names else None))

    def cycle_tensor(self, step: int = 1) -> str | None:
        names = self.tensor_names()
        if not names:
            return None
        i = names.index(self.view.tensor) if self.view.tensor in names else -step
        self.view = replace(self.view, tensor=names[(i + step) % len(names)])
        return self.view.tensor

    def counterpart(self, event: Event | None = None, name: str | None = None
                    ) -> tuple[Event, str] | None:
        """The other side of a tensor: the gradient of a forward tensor (d_x, grad.w in the
        backward event at the same place), or the value a backward gradient belongs to."""
        event = event or self.event
        name = name or self.view.tensor
        if name is None:
            return None
        if event.phase == FORWARD:
            other = self.trace.backward_at(event.path)
            for candidate in (f"d_{name}", f"grad.{name}"):
                if other is not None and candidate in other.tensors:
                    return other, candidate
            return None
        other = self.trace.forward_at(event.path)
        for prefix in ("d_", "grad."):
            if name.startswith(prefix) and other is not None and name[len(prefix):] in other.tensors:
                return other, name[len(prefix):]
        return None

    def shown_tensor(self) -> tuple[Event, str] | None:
        """(event, name) of what the tensor view shows: the chosen tensor or its counterpart."""
        self._fix_tensor()  # the cursor may have been moved directly
        if self.view.tensor is None:
            return None
        if self.view.gradient:
            other = self.counterpart()
            if other is not None:
                return other
        return self.event, self.view.tensor

    def tensor_slice(self, event: Event, name: str) -> tuple[np.ndarray, list[str] | None,
                                                             list[str] | None, str]:
        """A 2-D view of a tensor for display: (values, row labels, col labels, what was cut).

        4-D (B,H,*,*) -> [item, head]; 3-D (B,*,*) -> [item]; 1-D -> one row; 0-D -> 1x1.
        Rows are labelled with tokens when their count matches a token sequence of the event;
        at the output head and the loss, an axis over the vocabulary (V) with its tokens.
        """
        a = np.asarray(event.tensors[name])
        v = self.view
        where = ""
        if a.ndim == 4:
            item, head = min(v.item, a.shape[0] - 1), min(v.head, a.shape[1] - 1)
            a, where = a[item, head], (f"[item {item + 1}/{a.shape[0]}, "
                                       f"head {head + 1}/{a.shape[1]}]")
        elif a.ndim == 3:
            item = min(v.item, a.shape[0] - 1)
            a, where = a[item], f"[item {item + 1}/{a.shape[0]}]"
        elif a.ndim == 2 and name in ("ids", "targets"):
            item = min(v.item, a.shape[0] - 1)
            a, where = a[item:item + 1], f"[item {item + 1}/{a.shape[0]}]"
        elif a.ndim > 4:
            a = a.reshape(-1, a.shape[-1])
        if a.ndim == 0:
            a = a.reshape(1, 1)
        elif a.ndim == 1:
            a = a[None, :]
        rows = self._token_labels(event, name, a.shape[0])
        cols = None
        base = name[2:] if name.startswith("d_") else name
        if base in ATTENTION_TENSORS or (event.op == "dropout" and event.facts.attention):
            cols = self._key_labels(event, a.shape[1])
        vocab = self.vocab_labels()
        if _over_vocabulary(event, name):
            if a.shape[1] == len(vocab):  # logits, probabilities, their gradients, W (D, V), b
                cols = vocab
            elif a.shape[0] == len(vocab):  # a tied head's embedding gradient (V, D)
                rows = vocab
        if name in ("weight", "grad.weight") and event.op == "embedding":
            rows = vocab
        if name in ("ids", "targets"):
            cols = self._tgt(v.item) if a.shape[1] == len(self._tgt(v.item)) else None
            rows = None
        return a, rows, cols, where

    def vocab_labels(self) -> list[str]:
        """The vocabulary as tokens read standing alone (whitespace made visible); the labels
        are made once per tokenizer (scenarios.vocab_labels), only this list is new."""
        return list(vocab_labels(self.scenario.tokenizer, self.ascii))

    def tensor_scale(self, event: Event, name: str, values: np.ndarray,
                     keep: np.ndarray | None) -> Scale:
        """The shade scale of the shown slice `values`: 0..1 fixed for softmax outputs, else
        zero-centred over the slice, or over every item and head of the tensor when shared."""
        probabilities = name in PROBABILITY_TENSORS
        whole = np.asarray(event.tensors[name])
        if not self.view.shared_scale or whole.ndim < 3:
            return Scale.for_values(values, keep, probabilities)
        whole_keep = None
        if keep is not None and "keep" in event.tensors:
            whole_keep = np.broadcast_to(event.tensors["keep"], whole.shape)
        scope = "shared across items/heads" if whole.ndim == 4 else "shared across items"
        return Scale.for_values(whole, whole_keep, probabilities, scope)

    def _tgt(self, item: int) -> list[str]:
        tokens = self.trace.tgt_tokens
        return tokens[min(item, len(tokens) - 1)]

    def _stream(self, stream: str | None) -> list[str]:
        """The tokens of a stream (the event's facts name it) for the batch item shown."""
        item = min(self.view.item, len(self.trace.tgt_tokens) - 1)
        return self.trace.stream_tokens(stream, item)

    def _token_labels(self, event: Event, name: str, n: int) -> list[str] | None:
        """Row labels: the event's own stream, or in attention the keys' (k, v and their
        heads have one row per key)."""
        for stream in (event.facts.rows, event.facts.keys):
            if stream is not None and len(self._stream(stream)) == n:
                return self._stream(stream)
        return None

    def _key_labels(self, event: Event, n: int) -> list[str] | None:
        """Column labels of an attention map: the keys' stream, else the event's own."""
        for stream in (event.facts.keys, event.facts.rows):
            if stream is not None and len(self._stream(stream)) == n:
                return self._stream(stream)
        return None

    # -- attention ----------------------------------------------------------------------------------
    def attention_layer(self) -> str | None:
        """The attention layer at the cursor, or the one chosen in the view."""
        return self.event.facts.attention_layer or self.view.attention_path

    def cycle_attention_layer(self, step: int = 1) -> str | None:
        paths = self.trace.attention_paths
        if not paths:
            return None
        current = self.attention_layer()
        i = paths.index(current) if current in paths else -step
        self.view = replace(self.view, attention_path=paths[(i + step) % len(paths)])
        # leaving the layer the cursor is in: jump the cursor there too, so the two agree
        self.cursor.to_path(f"{self.view.attention_path}.softmax")
        self._fix_tensor()
        return self.view.attention_path

    def attention_map(self, path: str | None = None, stage: str | None = None,
                      head: int | None = None) -> AttentionMap | None:
        path = path or self.attention_layer()
        if path is None:
            return None
        v = self.view
        return self.trace.attention(path, v.head if head is None else head,
                                    min(v.item, self.batch_size - 1), stage or v.stage)

    def cycle(self, what: str, step: int = 1) -> object:
        """Cycle a view choice: "item", "head", "stage", "query"."""
        v = self.view
        if what == "item":
            value = (v.item + step) % self.batch_size
        elif what == "head":
            value = (v.head + step) % self.model.config.n_heads
        elif what == "stage":
            value = STAGES[(STAGES.index(v.stage) + step) % len(STAGES)]
        elif what == "query":
            amap = self.attention_map()
            n = amap.values.shape[0] if amap is not None else 1
            value = (self.temperature_row() + step) % n
            self.view = replace(v, query=value, query_chosen=True)
            return value
        else:
            raise SessionError(f"cannot cycle {what!r}")
        self.view = replace(v, **{what: value})
        return value

    def temperature_row(self) -> int:
        """The query row (from 0) the temperature view shows: the one chosen (j/J, a lesson),
        else the row of the current head whose weights are neither uniform nor saturated."""
        amap = self.attention_map(stage="weights")
        if amap is None:
            return 0
        if self.view.query_chosen:
            return min(self.view.query, amap.values.shape[0] - 1)
        return informative_row(amap.values, amap.keep)

    def scaling(self) -> HeadScaling | None:
        """What 1/sqrt(d_k) does to the current head of the attention layer shown."""
        path = self.attention_layer()
        if path is None:
            return None
        return head_scaling(self.trace, path, self.view.head, min(self.view.item,
                                                                   self.batch_size - 1))

    def set_temperature(self, factor: float) -> float:
        temperature = float(min(16.0, max(1 / 16, self.view.temperature * factor)))
        self.view = replace(self.view, temperature=temperature)
        return self.view.temperature

    def attention_scale(self, amap: AttentionMap) -> Scale:
        """The shade scale of an attention map: 0..1 fixed for softmax weights; else zero-centred
        over this map, or, when shared, over every layer and head of this batch item."""
        keep = amap.keep if amap.stage in ("masked", "weights") else None
        probabilities = amap.stage == "weights"
        if not self.view.shared_scale:
            return Scale.for_values(amap.values, keep, probabilities)
        # the overview asks once per map: take the layers x heads pass once per trace and stage
        cached = getattr(self, "_shared_attention_scale", None)
        if cached is not None and cached[0]() is self.trace and cached[1] == (amap.stage, amap.batch):
            return cached[2]
        visible = []
        for path in self.trace.attention_paths:
            for head in range(self.model.config.n_heads):
                other = self.attention_map(path, amap.stage, head)
                shown = other.keep if keep is not None and other.keep is not None else None
                visible.append(other.values[shown] if shown is not None else other.values.ravel())
        scale = Scale.for_values(np.concatenate(visible), None, probabilities, SHARED_ATTENTION)
        # weakly: a replaced trace must not live on in this cache
        self._shared_attention_scale = (weakref.ref(self.trace), (amap.stage, amap.batch), scale)
        return scale

    # -- other views ----------------------------------------------------------------------------------
    def positional_table(self, length: int | None = None) -> tuple[np.ndarray, str]:
        """(L, D) positional vectors and what they are: the sinusoids, or the learned table."""
        c = self.model.config
        n = min(c.max_len, length or c.max_len)
        if c.positional == "learned":
            event = self._stream_event("positional")
            if event is not None and event.facts.params:
                name = next(iter(event.facts.params.values()))
                value = self.model.state_dict()[name]
                return value[:n], f"learned position table {name} (first {n} positions)"
        return sinusoid_table(n, c.d_model), (
            f"sinusoids PE[p,2i]=sin(p/10000^(2i/D)), PE[p,2i+1]=cos(..), D={c.d_model}")

    def position_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None:
        """(x, pe, out) (T, D) and the tokens of the shown item at the positional step of the
        stream at the cursor: the token embeddings, the position vectors and their sum."""
        event = self._stream_event("positional")
        if event is None or not {"x", "out"} <= set(event.tensors):
            return None
        item = min(self.view.item, self.batch_size - 1)
        x, out = event.tensors["x"][item], event.tensors["out"][item]
        pe = out - x if "pe" not in event.tensors else np.broadcast_to(
            event.tensors["pe"], event.tensors["out"].shape)[item]
        tokens = self._stream(event.facts.rows)
        return x, pe, out, tokens[:x.shape[0]]

    def embedding_table(self) -> tuple[np.ndarray, list[str], str]:
        """The (V, D) token embedding of the stream at the cursor, with the vocabulary."""
        name = self._stream_event("embedding").facts.params["weight"]
        return self.model.state_dict()[name], self.vocab_labels(), name

    def _stream_event(self, op: str) -> Event | None:
        """The forward `op` event ("embedding", "positional") of the stream at the cursor; the
        target's where the cursor is on no stream, the first one if the stream has none."""
        stream = self.event.facts.rows or TARGET
        found = [e for e in self.trace.events if e.phase == FORWARD and e.op == op]
        mine = [e for e in found if e.facts.rows == stream]
        return (mine or found or [None])[0]


def _over_vocabulary(event: Event, name: str) -> bool:
    """Whether a tensor of `event` has an axis over the vocabulary: the output head's logits,
    weights and bias (not its input x, of width D) and every tensor of the loss."""
    return event.facts.vocabulary and name not in ("x", "d_x")
