"""render.py: arrays -> Rich text, checked as plain strings, no terminal."""
import numpy as np

from tui_tfs import render
from tui_tfs.style import Style
from tui_tfs.shading import NEGATIVE_RAMP, POSITIVE_RAMP, PROBABILITY_RAMP, Scale


def test_heatmap_labels_and_ramp_ends():
    values = np.array([[0.0, 1.0], [0.5, 0.25]])
    text = render.heatmap(values, ["a", "b"], ["x", "y"], legend=False).plain
    lines = text.splitlines()
    assert lines[0].split() == ["x", "y"]
    assert lines[1].startswith("a ") and POSITIVE_RAMP[False][-1] in lines[1]
    assert lines[1].split()[1] == "" or lines[1][2] == " "  # the minimum is the blank shade


def cells(text: str, row: int, n: int, label_w: int = 1, cell: int = 2) -> list[str]:
    """The glyphs of the first n cells of heatmap line `row` (labels `label_w` wide)."""
    line = text.splitlines()[row]
    return [line[label_w + 1 + cell * j] for j in range(n)]


STYLES = [Style(), Style(color=False), Style(ascii=True, color=False)]


def test_a_zero_gradient_draws_blank_and_the_sign_reads_without_colour():
    """A gradient row of exact zeros (a prompt position the loss ignores) next to a row with a
    large negative and a small positive entry: zeros blank, never the darkest shade; -x and +x
    differ in glyph, in every mode; the size still orders within a sign."""
    grads = np.array([[0.0, 0.0, 0.0, 0.0],
                      [-0.3144, 0.0344, 0.3144, -0.0344]])
    for style in STYLES:
        text = render.heatmap(grads, ["p", "q"], ["a", "b", "c", "d"], style=style).plain
        assert cells(text, 3, 4) == [" "] * 4, (style, text)  # under the legend and labels
        big_neg, small_pos, big_pos, small_neg = cells(text, 4, 4)
        assert " " not in (big_neg, small_pos, big_pos, small_neg)
        assert big_neg != big_pos and small_neg != small_pos
        positive, negative = POSITIVE_RAMP[style.ascii], NEGATIVE_RAMP[style.ascii]
        assert (big_pos, big_neg) == (positive[-1], negative[-1])
        assert (small_pos, small_neg) == (positive[0], negative[0])
        assert not set(POSITIVE_RAMP[style.ascii]) & set(NEGATIVE_RAMP[style.ascii])


def test_an_all_positive_tensor_is_still_centred_on_zero():
    """Its smallest value is not drawn blank (as a min..max scale would): only zero is."""
    text = render.heatmap(np.array([[2.0, 4.0, 0.0]]), style=Style(color=False)).plain
    row = text.splitlines()[2]
    assert row[0] == POSITIVE_RAMP[False][1] and row[1] == POSITIVE_RAMP[False][-1]
    assert row[2] == " "


def test_probabilities_on_a_fixed_scale_with_more_than_four_steps():
    weights = np.array([[0.001, 0.24, 0.759]])
    for style in STYLES:
        text = render.heatmap(weights, ["q"], ["a", "b", "c"], style=style,
                              scale=Scale.probability()).plain
        tiny, quarter, most = cells(text, 3, 3)
        assert len({tiny, quarter, most, " "}) == 4, (style, text)
        assert len(PROBABILITY_RAMP[style.ascii]) - 1 > 4
        # fixed, not stretched over the map: the largest weight here is not the darkest step
        assert most != PROBABILITY_RAMP[style.ascii][-1]
    assert Scale.probability().glyph(0.0, Style()) == " "


def test_a_broken_softmax_is_not_clipped_onto_the_probability_scale():
    scale = Scale.for_values(np.array([[-0.2, 1.4]]), probabilities=True)
    assert scale.kind == "zero-centred" and scale.limit == 1.4
    assert Scale.for_values(np.array([[0.0, 1.0]]), probabilities=True).kind == "probability"


def test_the_legend_names_the_scale_and_both_ends():
    grads = np.array([[-0.042, 0.01]])
    for style in STYLES:
        legend = render.heatmap(grads, style=style).plain.splitlines()[:2]  # above the map
        pm = "+-" if style.ascii else "±"
        assert legend[0] == f"zero-centred {pm}0.042 over this map"
        neg, pos = NEGATIVE_RAMP[style.ascii][::-1], POSITIVE_RAMP[style.ascii]
        assert legend[1] == f"-0.042 {neg} 0 {pos} +0.042"
        shared = Scale.zero_centred(grads, scope="shared across heads/layers")
        assert render.heatmap(grads, style=style, scale=shared).plain.splitlines()[0] == \
            f"zero-centred {pm}0.042 shared across heads/layers"
        legend = render.heatmap(np.array([[0.5]]), style=style,
                                scale=Scale.probability()).plain.splitlines()[:2]
        assert legend == ["0..1 fixed, 8 steps of 0.125",
                          f"0 {PROBABILITY_RAMP[style.ascii][1:]} 1"]


def test_a_shared_scale_changes_a_small_maps_glyphs():
    small = np.array([[0.1, -0.1]])
    own = render.heatmap(small, style=Style(color=False), legend=False).plain
    shared = render.heatmap(small, style=Style(color=False), legend=False,
                            scale=Scale(limit=1.0, scope="shared")).plain
    assert own != shared and own[0] == POSITIVE_RAMP[False][-1]


def test_column_labels_written_down_keep_cells_narrow_and_labels_whole():
    vocab = ["<pad>", "<s>", "0", "1"]
    text = render.heatmap(np.array([[0.1, 0.2, 0.3, 0.4]]), ["x"], vocab, style=Style(),
                          scale=Scale.probability(), labels_down=True, legend=False).plain
    lines = text.splitlines()
    header = lines[:5]  # as tall as the longest label
    columns = ["".join(line[2 + 2 * j] for line in header).strip() for j in range(4)]
    assert columns == vocab
    assert lines[5] == "x " + "".join(g + " " for g in "▁▂▃▄")


def test_masked_cells_differ_from_small_weights():
    values = np.array([[1.0, 0.0], [0.001, 0.999]])
    keep = np.array([[True, False], [True, True]])
    for style, masked in ((Style(), "×"), (Style(ascii=True), "x")):
        text = render.heatmap(values, ["q1", "q2"], ["k1", "k2"], keep, style,
                              scale=Scale.probability()).plain
        rows = text.splitlines()[3:5]  # the legend's two lines and the labels above
        assert masked in rows[0]
        assert masked not in rows[1]  # a tiny weight is a shade (or blank), never the mask glyph
        assert text.splitlines()[1].endswith(f"{masked} masked")


def test_ascii_mode_is_pure_ascii():
    values = np.linspace(-1, 1, 30).reshape(5, 6)
    keep = np.ones((5, 6), bool)
    keep[0, 5] = False
    text = render.heatmap(values, list("abcde"), [f"tok{i}" for i in range(6)], keep,
                          Style(ascii=True, color=False)).plain
    text += render.bars(["a.very.long.layer.path.name.here", "b"], [1.0, None], Style(ascii=True)).plain
    text += render.temperature_table(np.array([1.0, 2.0, 3.0]), None, ["a", "b", "c"],
                                     Style(ascii=True)).plain
    assert text.isascii()
    assert set(POSITIVE_RAMP[True]) & set(text) and set(NEGATIVE_RAMP[True]) & set(text)


def test_no_color_means_no_styles():
    text = render.heatmap(np.eye(3), style=Style(color=False), legend=False)
    assert all(not span.style for span in text.spans)


def test_nan_and_inf_have_their_own_glyphs():
    text = render.heatmap(np.array([[np.nan, np.inf, 1.0]]), legend=False).plain
    assert "?" in text and "!" in text


def test_number_grid_shows_values_and_mask():
    text = render.number_grid(np.array([[0.5, -2.0]]), ["r"], ["a", "b"],
                              np.array([[True, False]])).plain
    assert "0.500" in text and "×" in text and "-2" not in text


def test_number_grid_shows_three_significant_digits_in_aligned_columns():
    values = np.array([[3.14159e-9, -3.14159e-9, 0.00123], [-0.00123, 0.5, -1.23456e-12]])
    lines = render.number_grid(values, ["r1", "r2"], ["a", "b", "c"]).plain.splitlines()
    text = "\n".join(lines)
    for shown in ("3.14", "-3.14", "0.00123", "-0.00123", "0.500", "-1.23"):
        assert shown in text, shown
    assert "3e-09" not in text and "-1e-12" not in text  # one significant digit
    assert len({len(line) for line in lines}) == 1  # fixed-width cells: columns line up
    # values that need no more keep the 7-character cell, so 5 keys still fit a narrow panel
    plain = render.number_grid(np.array([[0.202, 0.198, 0.0123]]), ["<s>"], ["3", "1", "4"]).plain
    assert plain.splitlines()[1] == "<s>   0.202   0.198  0.0123"


def test_fmt_keeps_three_significant_digits_when_the_width_allows():
    assert render.fmt(3e-9).strip() == "3.00e-9"
    assert render.fmt(-3.14159e-9, 8) == "-3.14e-9"
    assert render.fmt(12345678.9).strip() == "1.235e7"
    assert render.fmt(0.5) == "  0.500" and render.fmt(0.0) == "  0.000"
    assert render.cell_width(np.array([0.5, -1.23e-12])) == 9


def test_softmax_temperature_and_entropy():
    row = np.array([1.0, 2.0, 3.0])
    sharp, flat = render.softmax(row, 0.1), render.softmax(row, 100.0)
    assert sharp.argmax() == 2 and sharp[2] > 0.99
    assert np.allclose(flat, 1 / 3, atol=1e-2)
    assert render.entropy(flat) > render.entropy(sharp)
    masked = render.softmax(row, 1.0, np.array([True, True, False]))
    assert masked[2] == 0 and np.isclose(masked.sum(), 1)


def test_stats_text_lists_every_statistic():
    from engine.trace.trace import tensor_stats

    text = render.stats_text(tensor_stats(np.array([0.0, 1.0, np.nan, np.inf]))).plain
    for word in ("min", "max", "mean", "std", "norm", "zeros 1", "NaN 1", "Inf 1", "float64"):
        assert word in text


def test_stats_text_fields_read_whole_in_the_tensor_panel_at_80_columns():
    """At 80x24 the tensor panel holds 47 columns (80 - the 28-column tree - borders, padding
    and a scrollbar's column): a wide shape and long numbers wrap between fields, never cut."""
    from engine.trace.trace import TensorStats

    stats = TensorStats(shape=(32, 64, 128), dtype="float32", min=-1.234e5, max=9.876e4,
                        mean=-0.1234, std=1.234e5, norm=5.678e7, zeros=123456, nan=12, inf=3)
    fields = ["(32, 64, 128) float32", "norm 5.678e7", "zeros 123456", "NaN 12", "Inf 3",
              "min -1.234e5", "max 9.876e4", "mean -0.1234", "std 1.234e5"]
    for width in (47, 40, 30):
        lines = render.stats_text(stats, width=width).plain.splitlines()
        assert max(len(line) for line in lines) <= width, (width, lines)
        for field in fields:  # each field whole on one line
            assert any(field in line for line in lines), (width, field, lines)
        assert "NaN 12  Inf 3" in "\n".join(lines)  # a group stays together while it fits
    assert render.stats_text(stats, width=47).plain.splitlines() == [
        "(32, 64, 128) float32", "norm 5.678e7  zeros 123456  NaN 12  Inf 3",
        "min -1.234e5  max 9.876e4", "mean -0.1234  std 1.234e5"]
    # where there is room it stays two lines, as before
    wide = render.stats_text(stats, width=80).plain.splitlines()
    assert wide == ["(32, 64, 128) float32  norm 5.678e7  zeros 123456  NaN 12  Inf 3",
                    "min -1.234e5  max 9.876e4  mean -0.1234  std 1.234e5"]


def test_bars_mark_unknown_values():
    text = render.bars(["a", "b", "c"], [0.01, None, 1.0]).plain.splitlines()
    assert "not reached" in text[1]
    assert text[2].count("█") > text[0].count("█")


def test_an_all_zero_map_says_so_and_draws_blank():
    text = render.heatmap(np.zeros((2, 3)), ["a", "b"], style=Style(color=False)).plain
    assert text.splitlines()[:2] == ["zero-centred over this map: every value is 0", "0 blank"]
    assert [line[2:].strip() for line in text.splitlines()[2:]] == ["", ""]


def test_legend_glyphs_take_their_map_colours_and_none_without_colour():
    legend = Scale(limit=1.0).legend(Style())
    styles = {legend.plain[span.start:span.end]: str(span.style) for span in legend.spans}
    assert styles[NEGATIVE_RAMP[False][::-1]] == "blue" and styles[POSITIVE_RAMP[False]] == "red"
    assert all(str(span.style) == "dim" for span in Scale(limit=1.0).legend(
        Style(color=False)).spans)
