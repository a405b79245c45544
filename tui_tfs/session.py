"""One explorer session: a scenario, its model and loss, the current trace and a cursor on it.

Both the TUI and the tests drive this object; it imports no Textual, so everything the
explorer can do can also be done (and checked) from plain Python:

    session = Session.open("reverse")
    session.step("over"); session.step("into")
    session.find("nonfinite")
    session.tensor_names()          # what the current event recorded
    session.attention_map()         # the map of the attention layer at (or chosen near) the cursor

View choices (which tensor, batch item, head, stage, query row, temperature) live here too, in
`ViewState`, so a test can say "head 2, masked stage" without a screen.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from engine.config import BreakSwitches
from engine.layers.embedding import sinusoid_table
from engine.loss import CrossEntropyLoss
from engine.navigation import Cursor, at_path, grad_norm_above, has_nonfinite, op_is
from engine.recorder import BACKWARD, FORWARD, Event
from engine.trace import ATTENTION_STAGES, AttentionMap, Batch, Trace, path_parts, record_step

STAGES = tuple(ATTENTION_STAGES)  # scores, scaled, masked, weights
STEPS = ("next", "prev", "over", "back_over", "into", "out", "end_of_forward", "first_backward")
ATTENTION_TENSORS = {"scores", "scaled", "masked", "weights", "keep"}  # (.., T, S) maps
GRAD_NORM_DEPTH = 3  # "decoder.blocks.0.self_attn": q, k, v and o projections together
EXPLORER_BATCH = 4  # rows of a "new batch": few enough to label, enough to choose between


class SessionError(ValueError):
    """Something the user asked for that cannot be done; the message says why."""


@dataclass
class ViewState:
    """What the views show of the current event; the screen reads and sets these."""

    tensor: str | None = None  # name of the tensor shown (a key of event.tensors)
    gradient: bool = False  # show the gradient counterpart of `tensor` instead
    numbers: bool = False  # numbers instead of shades
    item: int = 0  # batch item for 3-D and 4-D tensors and for attention
    head: int = 0  # head for 4-D tensors and attention
    stage: str = "weights"  # attention stage: scores | scaled | masked | weights
    attention_path: str | None = None  # attention layer shown when the cursor is not in one
    query: int = 0  # query row for the temperature view
    temperature: float = 1.0


@dataclass
class GradNorm:
    """One layer's parameter-gradient norm; `norm` is None until the backward reaches it."""

    path: str
    norm: float | None
    event_index: int


@dataclass
class Session:
    scenario: object  # scenarios.Scenario
    model: object  # engine model
    loss_fn: CrossEntropyLoss
    ascii: bool = False  # token labels in ASCII (whitespace drawn as _ rather than ␣)
    seed: int = 0
    view: ViewState = field(default_factory=ViewState)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.example = 0  # index into scenario.examples of the last example traced
        self.source = ""  # what the current trace ran on, in words
        self.trace: Trace | None = None
        self.cursor: Cursor | None = None
        self.training = None  # the TrainingController of this session, once training opened
        self.trace_example(0)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, name_or_path: str, ascii: bool = False, seed: int = 0) -> Session:
        """A session on a built-in scenario (by name) or a scenario file (by path)."""
        from scenarios import load_scenario

        scenario = load_scenario(name_or_path)
        model = scenario.build_model()
        loss_fn = CrossEntropyLoss(scenario.model_config.pad_id,
                                   scenario.train_config.label_smoothing)
        return cls(scenario, model, loss_fn, ascii=ascii, seed=seed)

    def _labels(self, ids: np.ndarray) -> list[list[str]]:
        tok = self.scenario.tokenizer
        return [[tok.label(int(i), ascii_only=self.ascii) for i in row] for row in ids]

    def record(self, batch, source: str) -> Trace:
        """Trace one forward + backward on `batch`; the cursor keeps its place when it can."""
        batch = Batch(batch.src, batch.tgt_in, batch.tgt_out)
        src_tokens = None if batch.src is None else self._labels(batch.src)
        self.trace = record_step(self.model, self.loss_fn, batch, src_tokens,
                                 self._labels(batch.tgt_in), self._labels(batch.tgt_out))
        self.source = source
        old = self.cursor.event if self.cursor is not None else None
        self.cursor = Cursor(self.trace, 0)
        if old is not None:  # stay at the same place in the model when it still exists
            same = [e.index for e in self.trace.events if (e.phase, e.path) == (old.phase, old.path)]
            self.cursor.goto(same[0] if same else old.index)
        self._backward_by_path = {e.path: e for e in self.trace.events if e.phase == BACKWARD}
        self._forward_by_path = {e.path: e for e in self.trace.events if e.phase == FORWARD}
        v = self.view
        v.item = min(v.item, self.batch_size - 1)
        v.head = min(v.head, self.model.config.n_heads - 1)
        if v.attention_path not in self.trace.attention_paths:
            v.attention_path = self.trace.attention_paths[0] if self.trace.attention_paths else None
        self._fix_tensor()
        return self.trace

    def trace_example(self, index: int) -> Trace:
        """Trace the scenario's example `index` (wrapping around); examples longer than the
        model can read are skipped, and with none left a held-out example is used."""
        examples = self.scenario.examples
        for k in range(len(examples)):
            i = (index + k) % len(examples)
            try:
                batch = self._fitting(self.scenario.batch_for(examples[i]), examples[i])
            except (SessionError, ValueError):
                continue
            self.example = i
            return self.record(batch, f"example {i + 1}/{len(examples)}: {examples[i]!r}")
        batch = self.scenario.eval_batches(limit=1, batch_size=1)[0]
        return self.record(batch, "a held-out example (the scenario's examples do not fit)")

    def _fitting(self, batch, text: str):
        """`batch` if every sequence fits the model's max_len, else SessionError."""
        limit = self.model.config.max_len
        longest = max(batch.tgt_in.shape[1], 0 if batch.src is None else batch.src.shape[1])
        if longest > limit:
            raise SessionError(f"{text!r} needs {longest} positions but the model reads at most "
                               f"max_len={limit}: type something shorter")
        return batch

    def trace_text(self, text: str) -> Trace:
        """Trace an input the user typed; ScenarioError (with the fix) if it cannot be encoded."""
        batch = self._fitting(self.scenario.batch_for(text), text)
        return self.record(batch, f"your input: {text!r}")

    def new_batch(self) -> Trace:
        """Trace a fresh random batch of the training split."""
        batch = self.scenario.next_batch(self.rng, batch_size=EXPLORER_BATCH)
        return self.record(batch, f"random training batch of {EXPLORER_BATCH}")

    def next_example(self) -> Trace:
        return self.trace_example(self.example + 1)

    # -- break-it switches ---------------------------------------------------------------------------
    @property
    def breaks(self) -> BreakSwitches:
        return self.model.config.breaks

    def break_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(BreakSwitches)]

    def toggle_break(self, name: str) -> bool:
        """Flip one switch, rebuild the model with the same weights, re-run the same batch.
        Returns the switch's new value."""
        if name not in self.break_names():
            raise SessionError(f"no break switch {name!r}; switches are {self.break_names()}")
        config = self.model.config
        value = not getattr(config.breaks, name)
        new_config = dataclasses.replace(config, breaks=dataclasses.replace(config.breaks,
                                                                            **{name: value}))
        from engine.models import build_model

        state = self.model.state_dict()
        model = build_model(new_config)
        model.load_state_dict(state)
        self.model = model
        self.record(self.trace.batch, self.source)
        return value

    # -- facts ------------------------------------------------------------------------------------
    @property
    def event(self) -> Event:
        return self.cursor.event

    @property
    def batch_size(self) -> int:
        return int(self.trace.batch.tgt_in.shape[0])

    def param_count(self) -> int:
        return int(sum(p.data.size for p in self.model.params()))

    def status(self) -> str:
        e = self.event
        return (f"{e.phase} | event {e.index + 1} of {len(self.trace)} | {e.path} ({e.op}) | "
                f"loss {self.trace.loss:.4f}")

    # -- stepping ---------------------------------------------------------------------------------
    def step(self, how: str) -> bool:
        """Move the cursor; `how` is one of STEPS. True if it moved."""
        if how not in STEPS:
            raise SessionError(f"step must be one of {STEPS}, got {how!r}")
        before = (self.cursor.index, self.cursor.level)
        method = {"end_of_forward": "to_end_of_forward", "first_backward": "to_first_backward"}
        getattr(self.cursor, method.get(how, how))()
        self._fix_tensor()
        return (self.cursor.index, self.cursor.level) != before

    def goto(self, index: int) -> None:
        self.cursor.goto(index)
        self._fix_tensor()

    def find(self, what: str, arg: str | float | None = None) -> bool:
        """Run to the next event that matches: "nonfinite", "grad_norm" (bound), "path", "op"."""
        if what == "nonfinite":
            predicate = has_nonfinite
        elif what == "grad_norm":
            predicate = grad_norm_above(float(arg))
        elif what == "path":
            predicate = at_path(str(arg))
        elif what == "op":
            predicate = op_is(str(arg))
        else:
            raise SessionError(f"cannot search for {what!r}")
        found = self.cursor.find_next(predicate)
        if found:
            self._fix_tensor()
        return found

    def layer_paths(self) -> list[str]:
        """Every node of the layer tree, in order: what "go to layer" offers."""
        return [node.path for node in self.trace.tree.walk() if node.path]

    # -- tensors ------------------------------------------------------------------------------------
    def tensor_names(self, event: Event | None = None) -> list[str]:
        event = event or self.event
        return [n for n, t in event.tensors.items() if t.dtype.kind in "fiub"]

    def _fix_tensor(self) -> None:
        names = self.tensor_names()
        if self.view.tensor not in names:
            preferred = [n for n in ("weights", "out", "d_x", "masked", "scaled", "scores", "probs",
                                     "context", "merged", "d_logits") if n in names]
            self.view.tensor = preferred[0] if preferred else (names[-1] if names else None)

    def cycle_tensor(self, step: int = 1) -> str | None:
        names = self.tensor_names()
        if not names:
            return None
        i = names.index(self.view.tensor) if self.view.tensor in names else -step
        self.view.tensor = names[(i + step) % len(names)]
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
            other = self._backward_by_path.get(event.path)
            for candidate in (f"d_{name}", f"grad.{name}"):
                if other is not None and candidate in other.tensors:
                    return other, candidate
            return None
        other = self._forward_by_path.get(event.path)
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
        Rows are labelled with tokens when their count matches a token sequence of the event.
        """
        a = np.asarray(event.tensors[name])
        v = self.view
        where = ""
        if a.ndim == 4:
            item, head = min(v.item, a.shape[0] - 1), min(v.head, a.shape[1] - 1)
            a, where = a[item, head], f"[item {item}, head {head}]"
        elif a.ndim == 3:
            item = min(v.item, a.shape[0] - 1)
            a, where = a[item], f"[item {item}]"
        elif a.ndim == 2 and name in ("ids", "targets"):
            item = min(v.item, a.shape[0] - 1)
            a, where = a[item:item + 1], f"[item {item}]"
        elif a.ndim > 4:
            a = a.reshape(-1, a.shape[-1])
        if a.ndim == 0:
            a = a.reshape(1, 1)
        elif a.ndim == 1:
            a = a[None, :]
        rows = self._token_labels(event, name, a.shape[0])
        cols = None
        base = name[2:] if name.startswith("d_") else name
        if base in ATTENTION_TENSORS or (event.op == "dropout" and "attn_drop" in event.path):
            cols = self._key_labels(event, a.shape[1])
        if name in ("weight", "grad.weight") and event.op == "embedding":
            rows = list(self.scenario.tokenizer.vocab)
        if name in ("ids", "targets"):
            cols = self._tgt(v.item) if a.shape[1] == len(self._tgt(v.item)) else None
            rows = None
        return a, rows, cols, where

    def _src(self, item: int) -> list[str] | None:
        tokens = self.trace.src_tokens
        return None if tokens is None else tokens[min(item, len(tokens) - 1)]

    def _tgt(self, item: int) -> list[str]:
        tokens = self.trace.tgt_tokens
        return tokens[min(item, len(tokens) - 1)]

    def _stream(self, path: str) -> list[str]:
        """The token sequence that flows at `path`: the source in the encoder, else the target."""
        src = self._src(self.view.item)
        if src is not None and path.startswith("encoder"):
            return src
        return self._tgt(self.view.item)

    def _token_labels(self, event: Event, name: str, n: int) -> list[str] | None:
        own = self._stream(event.path)
        if len(own) == n:
            return own
        src = self._src(self.view.item)
        if src is not None and len(src) == n and "cross_attn" in event.path:
            return src
        return None

    def _key_labels(self, event: Event, n: int) -> list[str] | None:
        src = self._src(self.view.item)
        if "cross_attn" in event.path and src is not None and len(src) == n:
            return src
        own = self._stream(event.path)
        return own if len(own) == n else None

    # -- attention ----------------------------------------------------------------------------------
    def attention_layer(self) -> str | None:
        """The attention layer at the cursor, or the one chosen in the view."""
        path = self.event.path
        for layer in self.trace.attention_paths:
            if path.startswith(layer + "."):
                return layer
        return self.view.attention_path

    def cycle_attention_layer(self, step: int = 1) -> str | None:
        paths = self.trace.attention_paths
        if not paths:
            return None
        current = self.attention_layer()
        i = paths.index(current) if current in paths else -step
        self.view.attention_path = paths[(i + step) % len(paths)]
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
            v.item = (v.item + step) % self.batch_size
            return v.item
        if what == "head":
            v.head = (v.head + step) % self.model.config.n_heads
            return v.head
        if what == "stage":
            v.stage = STAGES[(STAGES.index(v.stage) + step) % len(STAGES)]
            return v.stage
        if what == "query":
            amap = self.attention_map()
            n = amap.values.shape[0] if amap is not None else 1
            v.query = (v.query + step) % n
            return v.query
        raise SessionError(f"cannot cycle {what!r}")

    def set_temperature(self, factor: float) -> float:
        self.view.temperature = float(min(16.0, max(1 / 16, self.view.temperature * factor)))
        return self.view.temperature

    # -- other views ----------------------------------------------------------------------------------
    def positional_table(self, length: int | None = None) -> tuple[np.ndarray, str]:
        """(L, D) positional vectors and what they are: the sinusoids, or the learned table."""
        c = self.model.config
        n = min(c.max_len, length or c.max_len)
        if c.positional == "learned":
            for name, value in self.model.state_dict().items():
                if name.endswith("pos_emb.weight") or name.endswith("pos_emb.table"):
                    return value[:n], f"learned position table {name} (first {n} positions)"
        return sinusoid_table(n, c.d_model), (
            f"sinusoids PE[p,2i]=sin(p/10000^(2i/D)), PE[p,2i+1]=cos(..), D={c.d_model}")

    def embedding_table(self) -> tuple[np.ndarray, list[str], str]:
        """The (V, D) token embedding of the stream at the cursor, with the vocabulary."""
        state = self.model.state_dict()
        prefix = "encoder." if self.event.path.startswith("encoder") else (
            "decoder." if "decoder.tok_emb.weight" in state else "")
        name = f"{prefix}tok_emb.weight"
        if name not in state:
            name = next(n for n in state if n.endswith("tok_emb.weight"))
        return state[name], list(self.scenario.tokenizer.vocab), name

    def grad_norms(self) -> list[GradNorm]:
        """Per layer (q/k/v/o of one attention together), the norm of its parameters'
        gradients, in the order the backward pass reaches them; None for layers it has not
        reached at the cursor (in the forward phase: none yet)."""
        rows: dict[str, GradNorm] = {}
        for event in self.trace.events:
            params = event.attrs.get("params") if event.phase == BACKWARD else None
            if not params:
                continue
            grads = [event.tensors[f"grad.{k}"] for k in params if f"grad.{k}" in event.tensors]
            if not grads:
                continue
            layer = ".".join(path_parts(event.path)[:GRAD_NORM_DEPTH])
            old = rows.setdefault(layer, GradNorm(layer, None, event.index))
            if event.index > self.cursor.index:
                continue  # the backward pass has not computed it yet
            square = sum(float(np.square(g.astype(np.float64)).sum()) for g in grads)
            old.norm = math.sqrt((old.norm or 0.0) ** 2 + square)
            old.event_index = min(old.event_index, event.index)
        return sorted(rows.values(), key=lambda r: r.event_index)  # the order backward runs

    # -- checks -----------------------------------------------------------------------------------------
    def current_param(self) -> str | None:
        """The dotted parameter name the cursor is on, if its event owns parameters."""
        params = self.event.attrs.get("params") or {}
        name = self.view.tensor or ""
        local = name[len("grad."):] if name.startswith("grad.") else name
        if local in params:
            return params[local]
        return next(iter(params.values()), None)

    def run_checks(self) -> list:
        from engine.checks import run_checks

        return run_checks(self.trace, self.model, self.loss_fn)

    def gradient_check(self, param_name: str | None = None, n_samples: int = 12):
        from engine.checks import gradient_check

        name = param_name or self.current_param()
        if name is None:
            raise SessionError("this event has no parameters: step to a linear, layernorm or "
                               "embedding event (or its backward) to check a gradient")
        return gradient_check(self.model, self.loss_fn, self.trace, name, n_samples)

    def explanation(self, event: Event | None = None):
        from engine.formulas import explain

        return explain(event or self.event)

    def level_path(self) -> str:
        """The current node of the cursor (what over/out step across)."""
        phase, prefix = self.cursor.node()
        return prefix

    def depth(self) -> int:
        return len(path_parts(self.event.path))
