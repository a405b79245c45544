"""Each recorded event says where in the engine it was emitted: the emitting function (file,
name, first line), the emit's line, and the same call's previous emit."""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from test_trace import VARIANTS, build, record

import engine
from engine.maths.recorder import Recorder, recording


def two_ops(rec: Recorder, x: np.ndarray) -> None:
    y = x + 1
    rec.forward("f.add", "add", {"x": x, "y": y})
    z = np.exp(y)
    rec.emit("forward", "f.exp", "exp", {"y": y, "z": z})


def test_where_names_the_emitting_function_and_the_same_calls_previous_emit():
    first = inspect.getsourcelines(two_ops)[1]
    with recording() as rec:
        two_ops(rec, np.zeros(2))
        two_ops(rec, np.zeros(2))  # a new call starts again from the def line
    add, exp, add_again, exp_again = (e.where for e in rec.events)
    assert add.file == __file__ and add.function == "two_ops" and add.first_line == first
    assert (add.line, exp.line) == (first + 2, first + 4)  # through forward(), and emit()
    assert add.previous is None and exp.previous == add.line
    assert add_again.previous is None and exp_again.previous == add_again.line


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_event_of_a_model_step_is_placed_in_the_engine(variant):
    engine_dir = Path(engine.__file__).resolve().parent
    for event in record(build(variant)).events:
        w = event.where
        assert Path(w.file).resolve().is_relative_to(engine_dir), (event.path, w)
        assert w.first_line <= w.line and (w.previous is None or w.previous < w.line)
