"""A step's place, resolved against the real model: which trace, event, tensor, item, head,
stage, query row and temperature the step shows, or a `PlaceError` naming the key at fault.

    shown = resolve_place(step.place, lesson_dir, worlds)
    shown.event.path, shown.head           # counted from 0 here; lesson files count from 1

`Shown` is what the answer functions read and what the explorer is moved to.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from engine.maths.recorder import BACKWARD, FORWARD, Event
from engine.trace.attention_stats import informative_row
from engine.trace.trace import Trace

from .world import ModelKey, Worlds

PREFERRED_TENSORS = ("weights", "out", "d_x", "masked", "scaled", "scores", "probs", "context",
                     "merged", "d_logits")  # the explorer's first choice at an event


class PlaceError(ValueError):
    """A place key that does not fit the model: `key` is at fault, `fix` says what to write."""

    def __init__(self, key: str, message: str, fix: str):
        super().__init__(message)
        self.key = key
        self.fix = fix


@dataclass(frozen=True)
class Shown:
    """Everything a step shows (indices from 0)."""

    key: ModelKey
    scenario: object
    model: object
    loss_fn: object
    trace: Trace
    input_text: str  # the text of the shown batch item
    event: Event
    view: str
    tensor: str | None
    gradient: bool
    item: int
    head: int
    stage: str
    query: int
    temperature: float
    attention_path: str | None  # the attention layer the event is in (or the view's first)
    numbers: bool = False  # numbers instead of shades


def model_key(place: dict, lesson_dir: Path) -> ModelKey:
    """The ModelKey a place names; built-in names stay names, files resolve from the lesson."""
    from scenarios.tasks import TASKS

    breaks = tuple(sorted(place.get("breaks", ())))
    train = int(place.get("train", 0))
    if "checkpoint" in place:
        return ModelKey("checkpoint", str((lesson_dir / place["checkpoint"]).resolve()),
                        breaks, train)
    source = str(place["scenario"])
    if source not in TASKS:
        path = (lesson_dir / source).resolve()
        if not (source.endswith(".toml") or path.exists()):
            raise PlaceError("scenario", f"no scenario named {source!r}",
                             f"built-in scenarios are {', '.join(TASKS)}; or give a scenario "
                             f"file (.toml), relative to the lesson")
        source = str(path)
    return ModelKey("scenario", source, breaks, train)


def resolve_place(place: dict, lesson_dir: Path, worlds: Worlds) -> Shown:
    """The Shown of `place`; PlaceError (key, message, fix) for what does not fit, and the
    scenario's or checkpoint's own errors (ScenarioError, CheckpointError) for the model."""
    key = model_key(place, lesson_dir)  # PlaceError for a scenario that is neither
    world = worlds.get(key)
    scenario = world.scenario
    texts = _input_texts(place, scenario)
    from scenarios import ScenarioError

    try:
        trace = world.trace(texts)
    except ScenarioError as error:
        raise PlaceError("input" if "input" in place else "example", f"input: {error}",
                         "choose an input the scenario can encode") from None
    event = _event(place, trace)
    attention = _attention_layer(event, trace, place.get("view", "tensor"))
    batch, heads = trace.batch.tgt_in.shape[0], world.model.config.n_heads
    item = _counted(place, "item", batch, "batch item")
    head = _counted(place, "head", heads, "head")
    rows = len(trace.tgt_tokens[item])
    if attention is not None:
        rows = trace.attention(attention, 0, item).values.shape[0]
    query = _counted(place, "query", rows, "query row")
    if "query" not in place and place.get("view") == "temperature" and attention is not None:
        weights = trace.attention(attention, head, item, "weights")
        query = informative_row(weights.values, weights.keep)  # neither flat nor peaked
    tensor = _tensor(place, event)
    gradient = bool(place.get("gradient", False))
    if gradient and tensor is not None and not _has_gradient(trace, event, tensor):
        raise PlaceError("gradient", f"tensor {tensor} of {event.path} has no gradient recorded",
                         "remove gradient = true, or place the step on a tensor that has one")
    return Shown(key, scenario, world.model, world.loss_fn, trace, texts[item], event,
                 place.get("view", "tensor"), tensor, gradient, item, head,
                 place.get("stage", "weights"), query, float(place.get("temperature", 1.0)),
                 attention, bool(place.get("numbers", False)))


def _input_texts(place: dict, scenario) -> tuple[str, ...]:
    """The texts traced, one batch item each: `input` (text or a list), else an example."""
    if "input" in place:
        given = place["input"]
        return tuple(given) if isinstance(given, list) else (given,)
    examples = scenario.examples
    number = int(place.get("example", 1))
    if not 1 <= number <= len(examples):
        raise PlaceError("example", f"example {number} does not exist: {scenario.name} has "
                         f"examples 1 to {len(examples)}", "choose one of them, or give input")
    return (examples[number - 1],)


def _event(place: dict, trace: Trace) -> Event:
    phase = place.get("phase", FORWARD)
    events = [e for e in trace.events if e.phase == phase]
    if "event" in place:
        path = place["event"]
        exact = [e for e in events if e.path == path]
        if exact:
            return exact[0]
        index = trace.find_path(path, phase)  # a layer: its first event
        if index is not None:
            return trace.events[index]
        paths = list(dict.fromkeys(e.path for e in events))
        close = difflib.get_close_matches(path, paths, n=1, cutoff=0.5)
        raise PlaceError("event", f"no {phase} event at {path!r} in this model",
                         f"did you mean {close[0]!r}?" if close else
                         f"paths start with {', '.join(sorted({p.split('.')[0] for p in paths}))}")
    if "op" in place:
        found = [e for e in events if e.op == place["op"]]
        if found:
            return found[0]
        ops = sorted({e.op for e in events})
        raise PlaceError("op", f"no {phase} event of op {place['op']!r}",
                         "ops are " + ", ".join(ops))
    return events[0] if events else trace.events[0]


def _attention_layer(event: Event, trace: Trace, view: str) -> str | None:
    for layer in trace.attention_paths:
        if event.path.startswith(layer + "."):
            return layer
    if view in ("attention", "overview", "temperature", "scaling") and trace.attention_paths:
        return trace.attention_paths[0]
    return None


def _counted(place: dict, key: str, count: int, what: str) -> int:
    """A 1-based place value as a 0-based index, checked against `count`."""
    value = int(place.get(key, 1))
    if not 1 <= value <= count:
        raise PlaceError(key, f"{key} = {value} is out of range: this place has {what}s 1 to "
                         f"{count}", f"choose {key} from 1 to {count}")
    return value - 1


def _tensor(place: dict, event: Event) -> str | None:
    names = [n for n, t in event.tensors.items() if t.dtype.kind in "fiub"]
    if "tensor" in place:
        if place["tensor"] not in names:
            raise PlaceError("tensor", f"event {event.path} ({event.phase}) recorded no tensor "
                             f"{place['tensor']!r}", "its tensors are " + ", ".join(names))
        return place["tensor"]
    preferred = [n for n in PREFERRED_TENSORS if n in names]
    return preferred[0] if preferred else (names[-1] if names else None)


def _has_gradient(trace: Trace, event: Event, name: str) -> bool:
    if event.phase == BACKWARD:
        return True
    for other in trace.events:
        if other.phase == BACKWARD and other.path == event.path:
            return f"d_{name}" in other.tensors or f"grad.{name}" in other.tensors
    return False
