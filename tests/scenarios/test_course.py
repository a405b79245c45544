"""The built-in course: every lesson passes the same check a teacher's file does, every step's
place resolves against the real model and trace, and every question's answer, computed by the
lesson code, agrees with the same number read straight from the recorded tensors."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from scenarios.lessons import (ANSWERS, Worlds, builtin_lessons, check_file, judge, read_lesson,
                               walk_lesson)

COURSE = builtin_lessons()
SEED_000_PARTS = ["attention", "masks", "multi-head", "positions", "ffn-residual-norm", "encoder",
                  "decoder", "whole-model", "training", "inference"]


@pytest.fixture(scope="module")
def worlds():
    return Worlds()  # one model per (scenario, switches, training) for the whole module


@pytest.fixture(scope="module")
def walked(worlds):
    return {name: walk_lesson(read_lesson(path), worlds) for name, path in COURSE}


def test_the_course_covers_the_seed_parts_and_more():
    names = [name for name, _ in COURSE]
    assert len(names) >= 12
    assert names[:10] == SEED_000_PARTS
    assert {"scaling", "temperature", "backprop", "next-word", "break-causal"} <= set(names)


@pytest.mark.parametrize("name, path", COURSE, ids=[n for n, _ in COURSE])
def test_each_lesson_passes_check(name, path, worlds):
    assert check_file(path, worlds) == []
    lesson = read_lesson(path)
    assert lesson.title and lesson.summary and len(lesson.steps) >= 3
    assert any(step.question for step in lesson.steps)


def _event(shown, suffix: str):
    path = f"{shown.attention_path}.{suffix}"
    return next(e for e in shown.trace.events if e.phase == "forward" and e.path == path)


def _row(shown):
    """(p, keep) of the shown row, from the recorded tensors rather than the lesson code."""
    names = [e.path for e in shown.trace.events]
    masked = f"{shown.attention_path}.mask" in names
    keep_all = (np.broadcast_to(_event(shown, "mask").tensors["keep"],
                                _event(shown, "mask").tensors["masked"].shape)
                if masked else None)
    at = (shown.item, shown.head, shown.query)
    keep = np.ones(_event(shown, "softmax").tensors["weights"].shape[-1], bool) \
        if keep_all is None else keep_all[at]
    if shown.stage == "weights" and shown.temperature == 1.0:
        return _event(shown, "softmax").tensors["weights"][at].astype(np.float64), keep
    logits = (_event(shown, "scores").tensors["scores"] if shown.stage == "scores"
              else _event(shown, "scale").tensors["scaled"])[at].astype(np.float64)
    z = np.exp((logits - logits[keep].max()) / shown.temperature) * keep
    return z / z.sum(), keep


def expected(step, shown):
    """The answer, read from the trace's tensors by a second route, where one exists."""
    name, args = step.question.answer, step.question.args
    config = shown.model.config
    if name in ("top_key", "top_key_position", "top_weight", "row_entropy", "key_weight"):
        p, keep = _row(shown)
        top = int(np.argmax(np.where(keep, p, -1)))
        q = p[keep & (p > 0)]
        cols = shown.trace.attention(shown.attention_path, shown.head, shown.item).cols
        return {"top_key": cols[top], "top_key_position": top + 1, "top_weight": p[top],
                "row_entropy": float(-(q * np.log(q)).sum()),
                "key_weight": p[args.get("key", 1) - 1]}[name]
    if name == "hidden_keys":
        event = _event(shown, "mask") if any(
            e.path == f"{shown.attention_path}.mask" for e in shown.trace.events) else None
        return 0 if event is None else int((~np.broadcast_to(
            event.tensors["keep"], event.tensors["masked"].shape)[
                shown.item, shown.head, shown.query]).sum())
    if name == "scale":
        return 1.0 if "no_scaling" in shown.key.breaks else 1 / math.sqrt(
            config.d_model // config.n_heads)
    if name == "setting":
        return config.d_model // config.n_heads if args["name"] == "head_width" else getattr(
            config, args["name"])
    if name == "tensor_dim":
        return shown.event.tensors[shown.tensor].shape[args["axis"] - 1]
    if name in ("loss",):
        return shown.trace.loss
    if name == "uniform_loss":
        return math.log(config.vocab_size)
    if name in ("next_token", "next_prob"):
        probs = next(e for e in shown.trace.events if e.op == "output_softmax").tensors["probs"]
        row = probs[shown.item, shown.query]
        vocab = shown.scenario.tokenizer
        return vocab.label(int(row.argmax())) if name == "next_token" else float(row.max())
    if name == "gradcheck_passes":
        return "yes"  # the engine's backward is right: the check must say so
    if name == "gradcheck_error":
        return None  # judged below: under the float32 tolerance
    if name == "scores_std":
        scores = _event(shown, "scores").tensors["scores"][shown.item, shown.head]
        keep = np.ones(scores.shape, bool)
        if any(e.path == f"{shown.attention_path}.mask" for e in shown.trace.events):
            mask = _event(shown, "mask")
            keep = np.broadcast_to(mask.tensors["keep"], mask.tensors["masked"].shape)[
                shown.item, shown.head]
        spread = float(scores.astype(np.float64)[keep].std())
        return spread if shown.stage == "scores" else spread / math.sqrt(
            config.d_model // config.n_heads)
    if name == "token_position_cosine":
        event = next(e for e in shown.trace.events if e.phase == "forward"
                     and e.op == "positional")
        p = args["position"] - 1
        x = event.tensors["x"][shown.item, p].astype(np.float64)
        total = x + event.tensors["pe"][p].astype(np.float64)
        return float(x @ total / (np.linalg.norm(x) * np.linalg.norm(total)))
    if name == "loss_below_entropy":
        return "yes" if shown.trace.loss < shown.scenario.entropy else "no"
    return None


def test_every_question_is_answered_from_the_model_shown(walked):
    seen = set()
    for name, steps in walked.items():
        for walked_step in steps:
            step, shown, answer = walked_step.step, walked_step.shown, walked_step.answer
            assert shown.event in shown.trace.events
            if step.question is None:
                assert answer is None
                continue
            seen.add(step.question.answer)
            kind = ANSWERS[step.question.answer].kind
            if kind == "choice":
                assert answer in walked_step.choices, (name, step.number)
            else:
                assert math.isfinite(answer), (name, step.number)
            want = expected(step, shown)
            if want is not None:
                if isinstance(want, str):
                    assert answer == want, (name, step.number)
                else:
                    assert answer == pytest.approx(float(want), rel=1e-5, abs=1e-6), (
                        name, step.number)
            if step.question.answer == "gradcheck_error":
                assert answer < 1e-3
            # the computed answer is judged right; one well off is judged wrong
            assert judge(step, answer, str(answer))
            wrong = (next(c for c in walked_step.choices if c != answer) if kind == "choice"
                     else str(float(answer) + 10 * (step.question.tolerance or 0) + 1))
            assert not judge(step, answer, wrong)
    assert len(seen) >= 15  # the course exercises most answer functions


def test_training_in_place_changes_what_the_answers_say(walked):
    """Lesson 9 asks the same questions before and after training: the answers differ because
    they are computed from each model, never written in the file."""
    steps = walked["training"]
    before = [s.answer for s in steps if s.step.place.get("train") == 0]
    after = [s.answer for s in steps if s.step.place.get("train") == 300]
    assert "no" in before and "yes" in after
    loss_before = next(a for a in before if isinstance(a, float) and a > 1)
    loss_after = next(a for a in after if isinstance(a, float))
    assert loss_after < loss_before / 10


def test_break_it_lesson_trains_with_the_switch_on(walked):
    steps = walked["break-causal"]
    honest, broken = steps[0].shown, steps[-1].shown
    assert honest.key.breaks == () and broken.key.breaks == ("no_causal_mask",)
    assert honest.key.train == broken.key.train == 300
    assert broken.model.config.breaks.no_causal_mask
    assert broken.trace.loss < broken.scenario.entropy < honest.trace.loss


def test_the_readme_example_lesson_passes_check(tmp_path, worlds):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Lessons (for teachers)", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "readme.toml"
    path.write_text(example, encoding="utf-8")
    (step,) = walk_lesson(read_lesson(path), worlds)
    assert step.answer in step.choices and step.shown.head == 0 and step.shown.key.train == 300
