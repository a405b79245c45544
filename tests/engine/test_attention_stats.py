"""attention_stats: softmax rows over kept keys, their entropy, scaling's effect per row, the
spread of random scores as d_k grows, the telling row, cosine of rows."""
from __future__ import annotations

import math

import numpy as np

from engine.trace.attention_stats import (cosine_matrix, entropy_rows, informative_row,
                                          scaling_rows, softmax_rows, spread_by_width)


def test_softmax_rows_give_masked_keys_nothing_and_entropy_is_bounded():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 6)) * 3
    keep = np.tril(np.ones((4, 6), bool))
    p = softmax_rows(logits, keep)
    assert np.allclose(p.sum(axis=1), 1) and np.all(p[~keep] == 0)
    h = entropy_rows(p)
    assert h[0] == 0 and np.all(h <= np.log(keep.sum(axis=1)) + 1e-12)
    assert np.allclose(entropy_rows(np.full((1, 5), 0.2)), math.log(5))


def test_scaling_flattens_every_row():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((5, 7)) * 4
    rows = scaling_rows(scores, None, 1 / math.sqrt(16))
    assert np.all(rows.entropy_scaled >= rows.entropy_raw)
    assert np.all(rows.top_scaled <= rows.top_raw)
    assert math.isclose(rows.std_raw, scores.std()) and math.isclose(rows.std_scaled,
                                                                     scores.std() / 4)


def test_spread_grows_like_sqrt_dk_raw_and_stays_scaled():
    spread = spread_by_width(1.0, 1.0, 8)
    for w in spread:
        assert math.isclose(w.std_raw, math.sqrt(w.width), rel_tol=0.08)
        assert math.isclose(w.std_scaled, 1.0, rel_tol=0.08)
    assert spread[-1].entropy_raw < spread[0].entropy_raw  # raw rows saturate as d_k grows
    assert abs(spread[-1].entropy_scaled - spread[0].entropy_scaled) < 0.1
    assert spread_by_width(1.0, 1.0, 8, (64,))[0] == spread[-1]  # one draw per width


def test_the_telling_row_is_neither_uniform_nor_one_hot():
    weights = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.7, 0.2, 0.05, 0.05],
                        [0.97, 0.01, 0.01, 0.01]])
    assert informative_row(weights) == 2
    one_key = np.array([[1.0, 0], [1.0, 0]])
    assert informative_row(one_key, np.array([[True, False], [True, False]])) == 0


def test_cosine_matrix():
    table = np.array([[1.0, 0], [0, 2.0], [1, 1], [0, 0]])
    cos = cosine_matrix(table)
    assert np.allclose(np.diag(cos)[:3], 1) and cos[0, 1] == 0 and cos[3, 0] == 0
    assert math.isclose(cos[0, 2], 1 / math.sqrt(2))
