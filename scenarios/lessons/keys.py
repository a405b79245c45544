"""The keys of a lesson file: for each table, the keys it may hold, their types, what they
mean (said in every problem about them) and the values they allow."""
from __future__ import annotations

from engine.maths.switches import SWITCHES
from engine.trace.trace import ATTENTION_STAGES

from .answers import ANSWERS, ARG_KEYS, CHOICE_SETS, SETTINGS, STATS

VIEWS = ("tensor", "attention", "overview", "grads", "positional", "embedding", "temperature",
         "scaling", "lens")
STAGES = tuple(ATTENTION_STAGES)
PHASES = ("forward", "backward")
BREAKS = SWITCHES
MAX_TRAIN_STEPS = 5000  # `train` bound: a lesson's step opens in seconds, not hours
TEMPERATURE_RANGE = (1 / 16, 16.0)  # what the explorer's temperature view can show
MAX_FILE_BYTES = 1_000_000

# place key -> (type, what it is); the place of step 1 starts from [lesson], each later step
# from the step before, and a step changes only the keys it names.
PLACE_KEYS: dict[str, tuple[type, str]] = {
    "scenario": (str, "a built-in scenario name or a scenario file (.toml)"),
    "checkpoint": (str, "a checkpoint file (.safetensors), relative to the lesson"),
    "train": (int, f"train the model in place to step N (0 to {MAX_TRAIN_STEPS}; 0: untrained)"),
    "breaks": (list, f"break-it switches to turn on, the others off: {', '.join(BREAKS)}"),
    "input": ((str, list), "the text traced, or a list of texts (one batch item each)"),
    "example": (int, "the scenario's example N (from 1) is traced"),
    "event": (str, "the event's dotted path, e.g. decoder.blocks.0.cross_attn.softmax"),
    "op": (str, "the first event of this op, e.g. softmax"),
    "phase": (str, "forward or backward (default forward)"),
    "view": (str, ", ".join(VIEWS)),
    "tensor": (str, "the tensor shown, a name the event recorded (e.g. weights, out)"),
    "gradient": (bool, "show the tensor's gradient"),
    "numbers": (bool, "numbers instead of shades (the explorer's v)"),
    "item": (int, "the batch item, from 1"),
    "head": (int, "the head, from 1"),
    "stage": (str, ", ".join(STAGES)),
    "query": (int, "the query row (or output position), from 1"),
    "temperature": (float, f"softmax temperature, {TEMPERATURE_RANGE[0]} to "
                           f"{TEMPERATURE_RANGE[1]:g}"),
}
EITHER = (("scenario", "checkpoint"), ("input", "example"), ("event", "op"))
LESSON_KEYS = {"title": (str, "the lesson's title"), "summary": (str, "one line for the list"),
               **PLACE_KEYS}
STEP_KEYS = {"title": (str, "a short title for the step"), "text": (str, "Markdown text"),
             "question": (dict, "a [step.question] table"), **PLACE_KEYS}
QUESTION_KEYS = {"ask": (str, "the question (Markdown)"),
                 "answer": (str, "an answer function: " + ", ".join(ANSWERS)),
                 "choices": ((list, str), "a list of labels, or one of " + ", ".join(CHOICE_SETS)),
                 "tolerance": (float, "how far from the computed number still counts as right"),
                 "right": (str, "feedback for a right answer (Markdown)"),
                 "wrong": (str, "feedback for a wrong answer (Markdown)"),
                 **ARG_KEYS}
ARG_CHOICES = {"stat": STATS, "name": SETTINGS}


def value_problem(key: str, value) -> str | None:
    if key in ("item", "head", "query", "example", "key", "row", "axis", "position", "other",
               "width"):
        return None if 1 <= value <= 10_000 else "is out of range (people count from 1)"
    if key == "train" and not 0 <= value <= MAX_TRAIN_STEPS:
        return f"is out of range (0 to {MAX_TRAIN_STEPS})"
    if key == "temperature":
        low, high = TEMPERATURE_RANGE
        return None if low <= value <= high else "is out of range"
    if key == "tolerance" and not 0 <= value < 1e6:
        return "is out of range (0 or more)"
    allowed = {"view": VIEWS, "stage": STAGES, "phase": PHASES, **ARG_CHOICES}.get(key)
    if allowed is not None and value not in allowed:
        return f"is not one of {', '.join(allowed)}"
    if key == "breaks":
        unknown = [v for v in value if not isinstance(v, str) or v not in BREAKS]
        if unknown:
            return f"names no switch {short(unknown[0])}"
    if key == "choices" and isinstance(value, list):
        if len(value) < 2 or not all(isinstance(v, str) and v for v in value):
            return "needs two or more labels, each text"
    if key == "choices" and isinstance(value, str) and value not in CHOICE_SETS:
        return f"is not one of {', '.join(CHOICE_SETS)}"
    if key == "input" and isinstance(value, list):
        if not value or len(value) > 16 or not all(isinstance(v, str) and v for v in value):
            return "needs 1 to 16 texts, each in quotes"
        return None
    if key in ("input", "scenario", "checkpoint", "event", "op", "tensor") and not value.strip():
        return "is empty"
    return None


def is_a(value, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def kind_name(kind: type) -> str:
    if isinstance(kind, tuple):
        return "text in quotes or a list [...]"
    return {str: "text in quotes", int: "a whole number", float: "a number",
            bool: "true or false", list: "a list [...]", dict: "a table"}[kind]


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
