"""The views the course needs, read at 80x23 and 80x24, Unicode and ASCII: scaling (K) with
each row's entropy and top weight with and without 1/sqrt(d_k) and the spread as d_k grows;
temperature (T) on a row neither uniform nor saturated, the whole table on screen; the
positional view's similarity of positions and token + position sums; the overview's token
labels. Numbers are computed here from the trace's tensors, independently of the views."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import drive, screen_text
from tui_tfs.app import TfsApp

SIZES = [(80, 23), (80, 24)]
SHARPEN = 8.0  # q and k weights x8: scores x64, so scaling visibly matters on an untrained model


def sharpened(app):
    """A Pilot step: the session's q and k projections scaled up, the example traced again."""
    async def step(pilot):
        s = app.session
        state = s.model.state_dict()
        for name in state:
            if name.endswith(("q_proj.w", "k_proj.w")):
                state[name] = state[name] * SHARPEN
        s.model.load_state_dict(state)
        s.trace_example(s.example)
        app.screen.observe()
        await pilot.pause()
    return step


def looked(app, seen, name):
    async def step(pilot):
        await pilot.pause(0.2)
        view = app.screen.query_one(f"#{app.screen.state.shown}")
        seen[name] = (screen_text(app), view.text, view.text_width, app.session)
    return step


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def lines_fit(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_scaling_view_gives_each_rows_entropy_and_top_weight_with_and_without_the_scale(
        make_app, size, ascii):
    app = make_app(ascii=ascii, color=False)
    seen = {}
    drive(app, sharpened(app), "y", "y", "y", "K", looked(app, seen, "k"), size=size)
    screen, text, width, session = seen["k"]
    path = session.attention_layer()
    assert path == "decoder.blocks.0.cross_attn"
    event = next(e for e in session.trace.events if e.path == f"{path}.scores")
    scores = np.asarray(event.tensors["scores"][0, 0], dtype=np.float64)  # head 1: (T, S)
    d_k = event.tensors["q"].shape[-1]
    lines = text.splitlines()
    assert f"d_k = {d_k}" in text and f"x {1 / math.sqrt(d_k):.4f}" in text
    sharper = 0
    for r, row in enumerate(scores):
        scaled, raw = softmax(row / math.sqrt(d_k)), softmax(row)
        assert entropy(scaled) >= entropy(raw) - 1e-12  # dividing the scores flattens
        sharper += entropy(raw) < entropy(scaled) - 0.05
        expected = (f"{entropy(scaled):>6.3f} {entropy(raw):>6.3f}  {scaled.max():>6.3f} "
                    f"{raw.max():>6.3f}")
        assert any(line.startswith(f"{r + 1:>4} ") and line.endswith(expected)
                   for line in lines), expected
    assert sharper >= 1  # the view has something to show
    # the spread table: raw std grows with d_k, the scaled one stays about the same
    head = next(k for k, line in enumerate(lines) if "std of scores" in line)
    spread = [line.split() for line in lines[head + 2:]]
    raw_std = [float(parts[1]) for parts in spread]
    scaled_std = [float(parts[2]) for parts in spread]
    assert len(raw_std) == 5 and raw_std == sorted(raw_std) and raw_std[-1] > 3 * raw_std[0]
    assert max(scaled_std) < 1.3 * min(scaled_std)
    assert f"{d_k}*" in text  # this head's width marked
    # read at this size: every line of the view whole (nothing cut at the panel's edge)
    assert width is not None and lines_fit(text, width)
    assert "scaling by 1/sqrt(d_k)" in screen and len(screen.splitlines()) <= size[1]
    assert f"{1:>4} " in screen  # the first row of the table on screen without scrolling
    if ascii:
        assert screen.isascii() and text.isascii()


def informative(weights: np.ndarray) -> int:
    """The row whose entropy is nearest half its maximum (rows seeing at least two keys)."""
    best, found = math.inf, 0
    for r, row in enumerate(weights):
        n = int((row > 0).sum())
        if n < 2:
            continue
        distance = abs(entropy(row) / math.log(n) - 0.5)
        if distance < best:
            best, found = distance, r
    return found


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_temperature_view_starts_on_a_telling_row_and_shows_the_whole_table(make_app, size,
                                                                          ascii):
    app = make_app(ascii=ascii, color=False)
    seen = {}
    drive(app, sharpened(app), "y", "y", "y", "T", looked(app, seen, "auto"), "j",
          looked(app, seen, "chosen"), size=size)
    screen, text, width, session = seen["auto"]
    amap = session.trace.attention("decoder.blocks.0.cross_attn", 0, 0, "weights")
    row = informative(np.asarray(amap.values, dtype=np.float64))
    assert f"row {row + 1} (" in text and "neither flat nor peaked" in text
    masked = session.trace.attention("decoder.blocks.0.cross_attn", 0, 0, "masked")
    logits = np.asarray(masked.values[row], dtype=np.float64)
    for t in (0.25, 0.5, 1.0, 2.0, 4.0):
        p = softmax(logits / t)
        label = f"T={t:g}" + ("*" if t == 1.0 else "")
        expected = f"{label:>7} {entropy(p):>7.3f} {p.max():>5.3f} "
        assert expected in screen, expected  # on screen at this size, not only in the panel
    assert f"uniform over {len(logits)} keys: entropy {math.log(len(logits)):.3f}" in screen
    assert width is not None and lines_fit(text, width)
    chosen = seen["chosen"][1]
    assert f"row {(row + 1) % len(amap.values) + 1} (" in chosen and "chosen" in chosen
    if ascii:
        assert screen.isascii()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_positional_view_shows_similarities_and_token_plus_position(make_app, size, ascii):
    app = make_app(ascii=ascii, color=False)
    seen = {}
    drive(app, "P", looked(app, seen, "shades"), "v", looked(app, seen, "numbers"), size=size)
    screen, text, width, session = seen["numbers"]
    d = session.model.config.d_model
    p = np.arange(12)[:, None]
    i = np.arange(d // 2)[None, :]
    pe = np.zeros((12, d))
    pe[:, 0::2] = np.sin(p / 10000 ** (2 * i / d))
    pe[:, 1::2] = np.cos(p / 10000 ** (2 * i / d))
    unit = pe / np.linalg.norm(pe, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert "cosine similarity of the vectors of positions" in text and "1-12" in text
    grid = [line.split() for line in text.splitlines()]
    row2 = next(parts for parts in grid if parts[:1] == ["2"] and len(parts) > 3)
    assert float(row2[1]) == pytest.approx(cos[1, 0], abs=5e-4)  # columns 1.. of the first band
    assert float(row2[2]) == pytest.approx(1.0, abs=5e-4)
    event = next(e for e in session.trace.events if e.path == "encoder.pos_enc")
    x, out = event.tensors["x"][0].astype(np.float64), event.tensors["out"][0].astype(np.float64)
    tokens = session.trace.src_tokens[0]
    for k in range(len(tokens)):
        c = float(x[k] @ out[k] / (np.linalg.norm(x[k]) * np.linalg.norm(out[k])))
        assert any(line.startswith(f"{k + 1:>4} {tokens[k]:<5} ") and line.endswith(f"{c:>6.3f}")
                   for line in text.splitlines()), (k, c)
    assert width is not None and lines_fit(text, width) and lines_fit(seen["shades"][1], width)
    assert "positional encoding" in screen
    if ascii:
        assert screen.isascii() and seen["shades"][0].isascii()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_overview_labels_its_maps_with_tokens(make_app, size, ascii):
    app = make_app(ascii=ascii, color=False)
    seen = {}
    drive(app, "A", looked(app, seen, "overview"), size=size)
    screen, text, width, session = seen["overview"]
    lines = text.splitlines()
    src, tgt = session.trace.src_tokens[0], session.trace.tgt_tokens[0]
    heads = session.model.config.n_heads
    for path, queries, keys in (("encoder.blocks.0.self_attn", src, src),
                                ("decoder.blocks.0.cross_attn", tgt, src)):
        at = next(k for k, line in enumerate(lines) if line.endswith(path))
        key_line = "".join(k[0] for k in keys)
        block = lines[at + 1:at + 3 + len(queries)]
        assert block[0].split() == [f"h{h + 1}" for h in range(heads)][:len(block[0].split())]
        assert block[1].split()[0] == key_line  # keys across the top of each head's map
        label_w = max(len(q) for q in queries)
        assert [line[:label_w].strip() for line in block[2:]] == [q[:5] for q in queries]
    assert "attention overview" in screen
    assert width is not None and lines_fit(text, width)
    if ascii:
        assert screen.isascii()
