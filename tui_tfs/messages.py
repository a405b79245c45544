"""Messages that travel up: small dataclasses, one per thing a child tells its parent.

Attributes go down (the screen sets what a widget shows); messages come up (a widget says what
the user picked). Each message is a plain dataclass over Textual's `Message` (whose `__post_init__`
initialises it, so the dataclass needs nothing more).
"""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class ScenarioPicked(Message):
    """The picker chose a scenario: a built-in name or the path of a scenario file."""

    source: str
    train: bool = False  # open the training screen on it too


@dataclass
class EventPicked(Message):
    """The layer tree chose an event to stand on."""

    index: int


@dataclass
class TrainingProgress(Message):
    """The training worker took steps (posted a few times a second, never per step)."""

    step: int  # the trainer's step count now
    evaluated: bool  # a held-out evaluation happened since the last progress message


@dataclass
class TrainingStopped(Message):
    """The training worker ended: paused, stopped, finished, diverged or cancelled."""

    state: str  # the controller's state when the worker returned
