"""An opened GPT-2 folder is traced, never trained: its traces name the model's own weights
(GPT-2 small's are 500 MB) instead of copying them; a built-in scenario, which the app may
train in place, still has them copied."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))
from gpt2_folders import make_folder  # noqa: E402


def _forward_weights(session) -> list[np.ndarray]:
    return [event.tensors[name] for event in session.trace.events if event.phase == "forward"
            for name in ("w", "weight") if name in event.tensors]


def test_gpt2_traces_share_the_weights(tmp_path):
    from tui_tfs.session import Session

    session = Session.open(str(make_folder(tmp_path / "gpt2")))
    for trace in (session.trace, session.trace_text("It is a truth universally acknowledged")):
        weights = _forward_weights(session)
        assert len(weights) == 1 + 6 * 2 + 1  # token embedding, 2 blocks of 6, the tied head
        assert all(np.shares_memory(w, session.model.packed.data) for w in weights)
        assert trace.param_grads()["tok_emb.weight"].shape == (session.model.config.vocab_size,
                                                               session.model.config.d_model)


def test_a_trainable_scenario_still_copies_them():
    from tui_tfs.session import Session

    session = Session.open("tiny-lm")
    weights = _forward_weights(session)
    assert weights and not any(np.shares_memory(w, session.model.packed.data) for w in weights)


def test_gradient_norms_square_one_float64_copy():
    import tracemalloc

    from engine.trace.trace import square_sum as _square_sum

    grad = np.random.default_rng(3).standard_normal((1_000, 500)).astype(np.float32)  # 2 MB
    tracemalloc.start()
    try:
        total = _square_sum(grad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * grad.size * 8  # the (V, D) float64 square of GPT-2: 308 MB once
    assert total == float(np.square(grad.astype(np.float64)).sum())  # the same bits
    wide = grad.astype(np.float64)
    assert _square_sum(wide) == float(np.square(wide).sum()) and np.array_equal(wide, grad)


def test_gradient_norms_are_squared_once_per_trace(monkeypatch):
    import engine.trace.trace as trace_module
    from tui_tfs.session import Session

    squared = []
    real = trace_module.square_sum
    monkeypatch.setattr(trace_module, "square_sum", lambda a: squared.append(a.size) or real(a))
    session = Session.open("tiny-lm")
    session.goto(len(session.trace) - 1)  # the end of the backward: every norm is known
    first = session.grad_norms()
    count = len(squared)
    assert count == sum(1 for e in session.trace.events if e.phase == "backward"
                        for k in e.facts.params if f"grad.{k}" in e.tensors)
    session.goto(len(session.trace) - 2)  # the cursor moves, the view is drawn again
    session.goto(len(session.trace) - 1)
    assert session.grad_norms() == first and len(squared) == count
