"""One explorer session: a scenario, its model and loss, the current trace and a cursor on it.

Both the TUI and the tests drive this object; it imports no Textual, so everything the
explorer can do can also be done (and checked) from plain Python:

    session = Session.open("reverse")
    session.step("over"); session.step("into")
    session.find("nonfinite")
    session.tensor_names()          # what the current event recorded
    session.attention_map()         # the map of the attention layer at (or chosen near) the cursor

This module holds the stepping and re-tracing; what the views show of the current event
(which tensor, batch item, head, stage, query row, temperature: `ViewState`, and the slices
and maps cut from the trace) is in `session_views`, so a test can say "head 2, masked stage"
without a screen.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.maths.config import BreakSwitches
from engine.maths.loss import CrossEntropyLoss
from engine.maths.models import DecoderOnlyLM, EncoderDecoder
from engine.maths.switches import SWITCHES, with_break
from engine.trace.navigation import Cursor, at_path, grad_norm_above, has_nonfinite, op_is
from engine.maths.recorder import BACKWARD, Event
from engine.trace.trace import Batch, Trace, path_parts, record_step
from scenarios.base import Scenario

from .session_views import SessionError, SessionViews, ViewState

__all__ = ["EXPLORER_BATCH", "STEPS", "GradNorm", "Session", "SessionError", "ViewState",
           "source_key"]

STEPS = ("next", "prev", "over", "back_over", "into", "out", "end_of_forward", "first_backward",
         "first_update")
EXPLORER_BATCH = 4  # rows of a "new batch": few enough to label, enough to choose between


@dataclass
class GradNorm:
    """One layer's parameter-gradient norm; `norm` is None until the backward reaches it."""

    path: str
    norm: float | None
    event_index: int


@dataclass
class Session(SessionViews):
    """The explorer's state: see the module docstring."""

    scenario: Scenario  # the task: data, tokenizer, examples, settings
    model: DecoderOnlyLM | EncoderDecoder  # the model being explored (rebuilt by a break switch)
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
        self.checkpoint = None  # the checkpoint file it was opened from, if any (a Path)
        self.warning: str | None = None  # shown when it opens: what is wrong with its weights
        self.shown_view = "tensor"  # the explorer's view when it was left, to reopen on
        self.trace_example(0)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, source: str, ascii: bool = False, seed: int = 0) -> Session:
        """A session on a built-in scenario (by name), a scenario file or a checkpoint (by
        path). Raises scenarios.ScenarioError, engine.training.checkpoint.CheckpointError or
        headless.RunError, each naming the file and the fix."""
        from scenarios import load_scenario

        from scenarios.gpt2 import is_gpt2_folder

        from .checkpoints import kind_of

        if is_gpt2_folder(source):  # a Hugging Face GPT-2 folder: traced, not trained here
            from scenarios.gpt2_scenario import open_gpt2_scenario

            scenario = open_gpt2_scenario(source)
            return cls(scenario, scenario.build_model(), _loss_of(scenario), ascii=ascii, seed=seed)
        if kind_of(source) == "checkpoint":
            return cls.from_checkpoint(source, ascii=ascii, seed=seed)
        scenario = load_scenario(source)
        return cls(scenario, scenario.build_model(), _loss_of(scenario), ascii=ascii, seed=seed)

    @classmethod
    def from_checkpoint(cls, path: str, ascii: bool = False, seed: int = 0) -> Session:
        """The trained model of a checkpoint, and its training ready to go on from its step
        with its optimizer state (the session's `training` controller, saving back to it).
        `warning` says what is wrong with weights that still open (NaN/Inf)."""
        from scenarios.checkpoints import reopen_checkpoint

        from .headless import RunError
        from .training import TrainingController

        reopened = reopen_checkpoint(path)
        scenario = reopened.scenario
        session = cls(scenario, reopened.model, _loss_of(scenario), ascii=ascii, seed=seed)
        try:
            session.training = TrainingController(scenario, reopened.model,
                                                  checkpoint_path=reopened.path,
                                                  trainer_state=reopened.trainer_state)
        except ValueError as error:
            raise RunError(f"{path}: its training state does not fit its model ({error}); "
                           f"retrain it with tui-tfs train") from None
        session.checkpoint = reopened.path
        session.warning = reopened.warning
        return session

    @property
    def name(self) -> str:
        """What the session is called on screen: the scenario, or the checkpoint's file."""
        return self.checkpoint.name if self.checkpoint is not None else self.scenario.name

    def _labels(self, ids: np.ndarray) -> list[list[str]]:
        tok = self.scenario.tokenizer
        return [[tok.label(int(i), ascii_only=self.ascii) for i in row] for row in ids]

    def record(self, batch, source: str) -> Trace:
        """Trace one forward + backward on `batch`; the cursor keeps its place when it can."""
        batch = Batch(batch.src, batch.tgt_in, batch.tgt_out)
        src_tokens = None if batch.src is None else self._labels(batch.src)
        # a model that is never trained here keeps its weights: the trace need not copy them
        fixed = not getattr(self.scenario, "trainable", True)
        return self.show(record_step(self.model, self.loss_fn, batch, src_tokens,
                                     self._labels(batch.tgt_in), self._labels(batch.tgt_out),
                                     weights_fixed=fixed), source)

    def show(self, trace: Trace, source: str) -> Trace:
        """Explore `trace` (recorded elsewhere: a training step with its update); the cursor
        keeps its place when it can."""
        self.trace = trace
        self.source = source
        old = self.cursor.event if self.cursor is not None else None
        self.cursor = Cursor(self.trace, 0)
        if old is not None:  # stay at the same place in the model when it still exists
            same = [e.index for e in self.trace.events if (e.phase, e.path) == (old.phase, old.path)]
            self.cursor.goto(same[0] if same else old.index)
        v, paths = self.view, self.trace.attention_paths
        self.view = dataclasses.replace(
            v, item=min(v.item, self.batch_size - 1),
            head=min(v.head, self.model.config.n_heads - 1),
            attention_path=v.attention_path if v.attention_path in paths else (
                paths[0] if paths else None))
        self._fix_tensor()
        return self.trace

    def close(self) -> None:
        """Let go of the trace (a closed inspector's session: nothing shows it any more). The
        screen that showed it may live on as garbage until Python's cycle collector runs, and
        a trace is large (90 MB on char-lm), so the session drops it at once."""
        self.trace = None
        self.cursor = None

    def trace_example(self, index: int) -> Trace:
        """Trace the scenario's example `index` (wrapping around); the scenario makes sure
        each of its examples encodes and fits max_len."""
        examples = self.scenario.examples
        self.example = index % len(examples)
        text = examples[self.example]
        return self.record(self.scenario.batch_for(text),
                           f"example {self.example + 1}/{len(examples)}: {text!r}")

    def trace_text(self, text: str) -> Trace:
        """Trace an input the user typed; ScenarioError (with the fix) if it cannot be encoded
        or is longer than max_len."""
        return self.record(self.scenario.batch_for(text), f"your input: {text!r}")

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
        return list(SWITCHES)

    def toggle_break(self, name: str) -> bool:
        """Flip one switch, rebuild the model with the same weights, re-run the same batch.
        Returns the switch's new value."""
        if name not in self.break_names():
            raise SessionError(f"no break switch {name!r}; switches are {self.break_names()}")
        self.model, value = with_break(self.model, name)
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
        method = {"end_of_forward": "to_end_of_forward", "first_backward": "to_first_backward",
                  "first_update": "to_first_update"}
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

    # -- gradients ----------------------------------------------------------------------------------
    def grad_norms(self) -> list[GradNorm]:
        """Per layer (q/k/v/o of one attention together), the norm of its parameters'
        gradients, in the order the backward pass reaches them; None for layers it has not
        reached at the cursor (in the forward phase: none yet)."""
        rows: dict[str, GradNorm] = {}
        for event in self.trace.events:
            params = event.facts.params if event.phase == BACKWARD else None
            if not params:
                continue
            grads = [event.tensors[f"grad.{k}"] for k in params if f"grad.{k}" in event.tensors]
            if not grads:
                continue
            layer = event.facts.sublayer or event.path  # q, k, v and o of one attention together
            old = rows.setdefault(layer, GradNorm(layer, None, event.index))
            if event.index > self.cursor.index:
                continue  # the backward pass has not computed it yet
            square = sum(self.trace.square_sum(event.index, f"grad.{k}") for k in params
                         if f"grad.{k}" in event.tensors)
            old.norm = math.sqrt((old.norm or 0.0) ** 2 + square)
            old.event_index = min(old.event_index, event.index)
        return sorted(rows.values(), key=lambda r: r.event_index)  # the order backward runs

    # -- checks -----------------------------------------------------------------------------------------
    def current_param(self) -> str | None:
        """The dotted parameter name the cursor is on, if its event owns parameters."""
        params = self.event.facts.params
        name = self.view.tensor or ""
        local = name[len("grad."):] if name.startswith("grad.") else name
        if local in params:
            return params[local]
        return next(iter(params.values()), None)

    def run_checks(self) -> list:
        from engine.trace.checks import run_checks

        return run_checks(self.trace, self.model, self.loss_fn)

    def gradient_check(self, param_name: str | None = None, n_samples: int = 12):
        from engine.trace.checks import gradient_check

        name = param_name or self.current_param()
        if name is None:
            raise SessionError("this event has no parameters: step to a linear, layernorm or "
                               "embedding event (or its backward) to check a gradient")
        return gradient_check(self.model, self.loss_fn, self.trace, name, n_samples)

    def explanation(self, event: Event | None = None):
        from engine.trace.formulas import explain

        return explain(event or self.event)

    def level_path(self) -> str:
        """The current node of the cursor (what over/out step across)."""
        phase, prefix = self.cursor.node()
        return prefix

    def depth(self) -> int:
        return len(path_parts(self.event.path))


def source_key(source: str) -> str:
    """One key per thing opened (the app keeps one session per key): a built-in name as it
    is, a file by its absolute path."""
    from scenarios.tasks import TASKS

    return source if source in TASKS else str(Path(source).expanduser().resolve())


def _loss_of(scenario) -> CrossEntropyLoss:
    return CrossEntropyLoss(scenario.model_config.pad_id, scenario.train_config.label_smoothing)
