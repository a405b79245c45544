"""The answer functions read off the scaling and positional views, checked against numbers
computed here from the trace's recorded tensors; and the temperature view's place picks a row
that is neither uniform nor saturated when a lesson names none."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.trace.attention_stats import spread_by_width
from scenarios.lessons import ANSWERS, AnswerError, Worlds, resolve_place

HERE = Path(__file__).parent
PLACE = {"scenario": "reverse", "input": "31415", "event": "decoder.blocks.0.cross_attn.scale",
         "view": "scaling", "head": 2}


@pytest.fixture(scope="module")
def worlds():
    return Worlds()


def shown_at(worlds, **changes):
    return resolve_place({**PLACE, **changes}, HERE, worlds)


def answer(name, shown, **args):
    return ANSWERS[name].compute(shown, args)


def head_tensors(shown):
    event = shown.trace.events[shown.trace.find_path(f"{shown.attention_path}.scores")]
    q = np.asarray(event.tensors["q"][0, shown.head], dtype=np.float64)
    k = np.asarray(event.tensors["k"][0, shown.head], dtype=np.float64)
    return q, k, np.asarray(event.tensors["scores"][0, shown.head], dtype=np.float64)


def test_scores_std_is_the_spread_of_the_heads_scores_raw_or_scaled(worlds):
    raw, scaled = shown_at(worlds, stage="scores"), shown_at(worlds, stage="scaled")
    q, k, scores = head_tensors(raw)
    assert np.allclose(scores, q @ k.T, atol=1e-5)
    assert answer("scores_std", raw) == pytest.approx(scores.std(), rel=1e-6)
    assert answer("scores_std", scaled) == pytest.approx(scores.std() / math.sqrt(q.shape[1]),
                                                         rel=1e-6)


def test_width_answers_grow_raw_and_stay_scaled(worlds):
    raw, scaled = shown_at(worlds, stage="scores"), shown_at(worlds, stage="scaled")
    q, k, _ = head_tensors(raw)
    stds = [answer("width_std", raw, width=w) for w in (4, 16, 64)]
    # std(q . k) = sqrt(d_k) sigma_q sigma_k for independent entries: within sampling error
    for w, s in zip((4, 16, 64), stds):
        assert s == pytest.approx(math.sqrt(w) * q.std() * k.std(), rel=0.1)
        assert answer("width_std", scaled, width=w) == pytest.approx(q.std() * k.std(), rel=0.1)
    assert stds[0] < stds[1] < stds[2]
    assert answer("width_entropy", raw, width=64) <= answer("width_entropy", scaled, width=64)
    same = spread_by_width(q.std(), k.std(), k.shape[0], (64,))[0]  # what the view shows
    assert answer("width_entropy", scaled, width=64) == same.entropy_scaled
    with pytest.raises(AnswerError, match="head widths"):
        answer("width_std", raw, width=5)


def test_token_position_cosine_reads_the_positional_step(worlds):
    shown = shown_at(worlds, event="encoder.pos_enc", view="positional")
    x = np.asarray(shown.event.tensors["x"][0], dtype=np.float64)
    pe = np.asarray(shown.event.tensors["pe"], dtype=np.float64)
    for p in (1, 3, 5):
        s = x[p - 1] + pe[p - 1]
        expected = x[p - 1] @ s / (np.linalg.norm(x[p - 1]) * np.linalg.norm(s))
        assert answer("token_position_cosine", shown, position=p) == pytest.approx(expected)
    with pytest.raises(AnswerError, match="positions 1 to 5"):
        answer("token_position_cosine", shown, position=9)


def test_a_temperature_place_without_a_query_picks_a_row_neither_flat_nor_peaked(worlds):
    shown = shown_at(worlds, event="decoder.blocks.0.cross_attn.softmax", view="temperature")
    weights = shown.trace.attention(shown.attention_path, shown.head, 0, "weights").values
    p = np.asarray(weights, dtype=np.float64)
    half = np.abs(-(p * np.log(p)).sum(axis=1) / math.log(p.shape[1]) - 0.5)
    assert shown.query == int(np.argmin(half))
    named = shown_at(worlds, event="decoder.blocks.0.cross_attn.softmax", view="temperature",
                     query=1)
    assert named.query == 0
