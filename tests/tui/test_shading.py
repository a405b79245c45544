"""Pilot tests of the shade scales on the explorer's screens: zero draws blank, probabilities
on a fixed 0..1 scale, one scale shared across heads and layers on `z`, a legend that names
the scale in force, and the vocabulary labelling the columns of logits and probabilities."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from conftest import drive, screen_text

pytestmark = pytest.mark.timeout(120)


def check(fn):
    async def step(pilot):
        fn(pilot.app)
    return step


def goto(path: str, phase: str = "forward", tensor: str | None = None):
    def go(app):
        app.session.cursor.to_path(path, phase)
        app.session.goto(app.session.cursor.index)
        if tensor is not None:
            app.session.view = replace(app.session.view, tensor=tensor)
        app.screen.observe()
    return check(go)


def panel_text(app, view: str) -> str:
    return app.screen.query_one(f"#{view}").text


def grid_rows(text: str, labels: list[str]) -> list[str]:
    """The cells of a heatmap's rows, in order: the lines after the column labels, each without
    its row label (labels right-aligned to the widest)."""
    width = max(len(r) for r in labels)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(labels[0].rjust(width) + " "))
    rows = lines[start:start + len(labels)]
    assert [row[:width].strip() for row in rows] == labels
    return [row[width + 1:] for row in rows]


def legend_of(text: str) -> tuple[str, str]:
    """The two legend lines: the scale in words, then its ends."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(("zero-centred", "0..1 fixed")))
    return lines[i], lines[i + 1]


def column_labels_down(text: str, n_rows_before: int, indent: int, n_cols: int) -> list[str]:
    """Column labels written downwards above the cells (two columns a cell)."""
    lines = text.splitlines()
    grid_start = next(i for i, line in enumerate(lines) if line.startswith("<s> "))
    header = lines[n_rows_before:grid_start]
    return ["".join(line[indent + 2 * j] if len(line) > indent + 2 * j else " "
                    for line in header).strip() for j in range(n_cols)]


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_addition_prompt_rows_of_a_zero_gradient_draw_blank(make_app, ascii):
    """The loss ignores the prompt (1 2 + 3 4 =): d_logits is exactly 0 there and must draw
    as the blank middle of the zero-centred scale, not as the darkest shade."""
    seen = {}
    drive(make_app("addition", ascii=ascii, color=False), "b",
          check(lambda app: seen.update(text=panel_text(app, "tensor"),
                                        event=app.session.event, screen=screen_text(app),
                                        vocab=app.session.vocab_labels(),
                                        tokens=app.session.trace.tgt_tokens[0])))
    event, text = seen["event"], seen["text"]
    assert (event.path, event.phase) == ("loss.cross_entropy", "backward")
    d_logits = event.tensors["d_logits"][0]  # (T, V)
    rows = grid_rows(text, seen["tokens"])
    zero_rows = [t for t in range(len(rows)) if (d_logits[t] == 0).all()]
    assert zero_rows == [0, 1, 2, 3, 4, 5]  # <s> 1 2 + 3 4: the prompt
    for t, row in enumerate(rows):
        assert (row.strip() == "") == (t in zero_rows), (t, row)
    legend = legend_of(text)
    assert legend[0].startswith("zero-centred " + ("+-" if ascii else "±"))
    assert legend[0].endswith("over this map") and legend[1].startswith("-")
    # the columns are the vocabulary, written downwards over two-column cells
    labels_at = text.splitlines().index(next(line for line in text.splitlines()
                                             if line.lstrip().startswith("<")))
    assert column_labels_down(text, labels_at, 4, len(seen["vocab"])) == seen["vocab"]


def test_logits_and_probabilities_label_their_columns_with_the_vocabulary(make_app):
    seen = {}
    drive(make_app("reverse"), goto("lm_head", tensor="out"),
          check(lambda app: seen.update(logits=panel_text(app, "tensor"))),
          goto("loss.softmax", tensor="probs"),
          check(lambda app: seen.update(probs=panel_text(app, "tensor"),
                                        vocab=app.session.vocab_labels(),
                                        screen=screen_text(app))),
          "v", check(lambda app: seen.update(numbers=panel_text(app, "tensor"))))
    vocab = seen["vocab"]
    for name in ("logits", "probs"):
        lines = seen[name].splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("<"))
        assert column_labels_down(seen[name], start, 4, len(vocab)) == vocab, name
    assert any(line.startswith("zero-centred") for line in seen["logits"].splitlines())
    assert "0..1 fixed, 8 steps of 0.125\n0 ▁▂▃▄▅▆▇█ 1\n" in seen["probs"]
    assert "0..1 fixed" in seen["screen"]  # the legend is on the 80x24 screen, not scrolled off
    # the numbers view names the columns across, in bands of as many columns as the panel holds
    headers = [line.split() for line in seen["numbers"].splitlines()
               if line.split() and all(word in vocab for word in line.split())]
    assert [word for header in headers for word in header] == vocab


def test_z_shares_one_scale_across_heads_and_layers(make_app):
    """At the scores stage each map is zero-centred over its own range; z puts every map on
    the largest range of all layers and heads, which changes a map's glyphs and the legend."""
    seen = []

    def grab(view):
        return check(lambda app: seen.append((panel_text(app, view),
                                              app.session.view.shared_scale)))

    drive(make_app("reverse"), goto("decoder.blocks.0.cross_attn.softmax"), "a", "s",
          grab("attention"), "z", grab("attention"), "A", grab("overview"), "z",
          grab("overview"))
    (own, off), (shared, on), (overview_shared, _), (overview_own, _) = seen
    assert (off, on) == (False, True)
    assert "[scores]" in own
    own_legend, shared_legend = legend_of(own)[0], legend_of(shared)[0]
    assert own_legend.startswith("zero-centred ±") and own_legend.endswith("over this map")
    assert shared_legend.endswith("shared across heads/layers")
    own_limit = float(own_legend.split("±")[1].split()[0])
    shared_limit = float(shared_legend.split("±")[1].split()[0])
    assert shared_limit > own_limit
    assert legend_of(shared)[1] == f"-{shared_limit:g} ●•∘· 0 ░▒▓█ +{shared_limit:g}"
    assert own.splitlines()[5:] != shared.splitlines()[5:]  # the same map, drawn lighter
    assert legend_of(overview_shared)[0].endswith("shared across heads/layers")
    assert legend_of(overview_own)[0].startswith("zero-centred, each map its own: ±")
    assert overview_shared.splitlines()[3:] != overview_own.splitlines()[3:]


def test_the_shared_scale_key_is_in_help_and_palette(make_app):
    seen = {}
    drive(make_app(), check(lambda app: seen.update(
        titles=[c.title for c in app.get_system_commands(app.screen)])), "question_mark",
        check(lambda app: seen.update(help=app.screen.query_one("#help-body").content.plain)))
    title = "Shade scale: each map its own <-> one shared across heads/layers"
    assert title in seen["titles"]
    assert f"z         {title}" in seen["help"]


def test_attention_weights_use_the_fixed_scale_with_its_legend(make_app):
    seen = {}
    drive(make_app("reverse", ascii=True), goto("decoder.blocks.0.self_attn.softmax"), "a",
          check(lambda app: seen.update(text=panel_text(app, "attention"),
                                        amap=app.session.attention_map())))
    assert legend_of(seen["text"]) == ("0..1 fixed, 8 steps of 0.125", "0 .:-=+*#@ 1  x masked")
    # every visible weight is drawn by its eighth: ceil(8 p)
    amap = seen["amap"]
    rows = grid_rows(seen["text"], amap.rows)
    cell = len(rows[0]) // len(amap.cols)
    for i, row in enumerate(rows):
        for j in range(len(amap.cols)):
            glyph = row[cell * j]
            if not amap.keep[i, j]:
                assert glyph == "x"
            else:
                assert glyph == " .:-=+*#@"[math.ceil(float(amap.values[i, j]) * 8 - 1e-9)]
