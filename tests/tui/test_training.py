"""The training controller and the plot renderer, without Textual: the run, its requests,
settings changed between steps, divergence, saving, generation, and the plot's cost."""
from __future__ import annotations

import re
import math
import threading
import time

import numpy as np
import pytest

from scenarios import load_scenario
from tui_tfs.style import Style
from tui_tfs.training import DIVERGED, FINISHED, PAUSED, RUNNING, STOPPED, TrainingController
from tui_tfs.widgets.loss_plot import PlotData, downsample, loss_plot_text
from tui_tfs.widgets.metrics import grad_history_text, metrics_text
from tui_tfs.widgets.predictions import generation_text, predictions_text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def reverse():
    return load_scenario("reverse")


def controller(scenario, **kwargs) -> TrainingController:
    return TrainingController(scenario, scenario.build_model(), **kwargs)


def run_steps(c: TrainingController, n: int) -> None:
    """Exactly n more steps (run_for stops at total_steps)."""
    c.total_steps = c.step + n
    assert c.start()
    while c.state == RUNNING:
        c.run_for(5.0)


def test_run_records_history_evaluations_and_finishes(reverse):
    c = controller(reverse, eval_every=10)
    run_steps(c, 20)
    assert c.state == FINISHED and c.step == 20
    assert [s.step for s in c.history] == list(range(1, 21))
    assert [e.step for e in c.evaluations] == [10, 20]  # every 10 (and at the end)
    ev = c.evaluation
    assert {"loss", "exact_match", "perplexity"} <= set(ev.metrics) and len(ev.predictions) == 6
    assert c.history[9].eval_loss == c.evaluations[0].metrics["loss"]
    assert set(c.layer_norms) >= {"encoder.blocks.0", "decoder.blocks.1"}
    assert all(len(v) == 20 for v in c.layer_norms.values())
    assert c.uniform_loss == pytest.approx(np.log(reverse.model_config.vocab_size))
    assert c.optimum == 0.0, "the scenario's optimum: reversing has one right answer"
    assert c.model.training, "evaluating gives the model back in training mode"
    assert not c.start() and "complete" in c.notice


def test_same_losses_as_the_engine_trainer_alone(reverse):
    """One loop: the controller's steps are the engine Trainer's steps, number for number."""
    from engine.training.trainer import Trainer

    c = controller(reverse, eval_every=0)
    run_steps(c, 5)
    alone = Trainer(reverse.build_model(), reverse.train_config, reverse.next_batch).run(5)
    assert [s.loss for s in c.history] == [s.loss for s in alone]


def test_pause_and_stop_requests_land_between_steps(reverse):
    c = controller(reverse, eval_every=0)
    assert c.start()
    done = threading.Event()

    def worker():
        while c.state == RUNNING:
            c.run_for(0.05)
        done.set()

    threading.Thread(target=worker, daemon=True).start()
    while c.step < 3:
        time.sleep(0.01)
    c.request("pause")
    assert done.wait(10)
    assert c.state == PAUSED and c.step == len(c.history)
    c.request("stop")  # stopping a paused run ends it
    assert c.state == STOPPED
    assert c.start() and c.state == RUNNING  # and it can train on


def test_lr_change_applies_from_the_next_step_and_is_marked(reverse):
    c = controller(reverse, eval_every=0)
    run_steps(c, 2)
    before = c.history[-1].lr
    c.set_lr(c.config.lr * 10)
    run_steps(c, 1)
    assert c.history[-1].lr == pytest.approx(before * 10 * 3 / 2, rel=1e-3)  # warmup: step 3 of 100
    assert c.markers[-1].kind == "lr" and c.markers[-1].step == 3
    with pytest.raises(ValueError):
        c.set_lr(-1.0)


def test_break_switch_rebuilds_with_same_weights_and_optimizer(reverse):
    c = controller(reverse, eval_every=0)
    run_steps(c, 3)
    weights, state = c.model.state_dict(), c.trainer.state()
    old = c.model
    assert c.toggle_break("no_scaling") is True
    assert c.model is not old and c.model.config.breaks.no_scaling
    for name, value in c.model.state_dict().items():
        np.testing.assert_array_equal(value, weights[name])
    for key, value in c.trainer.state().items():
        np.testing.assert_array_equal(value, state[key])
    run_steps(c, 1)
    assert c.step == 4 and c.markers[-1].kind == "break"


def test_divergence_pauses_and_keeps_the_last_good_weights(reverse):
    c = controller(reverse, eval_every=0)
    c.set_lr(1e30)
    c.total_steps = 50
    assert c.start()
    measured = {}  # step -> the weights its loss was measured at
    while c.state == RUNNING:
        measured[c.step + 1] = c.model.state_dict()
        c.run_for(0.0)  # one step at a time
    assert c.state == DIVERGED and c.diverged_at is not None
    assert c.diverged_at.nonfinite and c.step == c.diverged_at.step
    kept = c.diverged_at.weights_of_step
    assert kept is not None and kept < c.step
    for name, value in c.model.state_dict().items():
        np.testing.assert_array_equal(value, measured[kept][name])  # the bad updates undone
        assert np.isfinite(value).all() and np.abs(value).max() < 1e3
    assert math.isfinite(c.trainer.step().loss)  # the kept weights really are good ones
    assert any(m.kind == "nan" for m in c.markers)
    assert "diverged" in c.notice and f"weights of step {kept} kept" in c.notice


def test_save_writes_a_checkpoint_the_cli_reads(reverse, tmp_path):
    from scenarios.checkpoints import open_checkpoint

    c = controller(reverse, eval_every=0, checkpoint_path=tmp_path / "r.safetensors")
    run_steps(c, 2)
    path = c.save()
    trained = open_checkpoint(path)
    assert trained.step == 2 and trained.layout == "pairs"
    for name, value in trained.model.state_dict().items():
        np.testing.assert_array_equal(value, c.model.state_dict()[name])


def test_generate_gives_probabilities_and_alternatives(reverse):
    c = controller(reverse, eval_every=0)
    g = c.generate("31415", temperature=0.5, top_k=3)
    assert g.tokens and len(g.probs) == len(g.tokens) == len(g.alternatives)
    assert all(0 < p <= 1 for p in g.probs)
    assert all(len(alts) <= 5 for alts in g.alternatives)
    assert g.tokens[-1] == "</s>" or len(g.tokens) == reverse.model_config.max_len
    text = generation_text(g, "temperature 0.50", Style(ascii=True)).plain
    assert "'31415' ->" in text and "alt1" in text


def test_generate_for_a_language_model():
    scenario = load_scenario("tiny-lm")
    c = controller(scenario, eval_every=0)
    g = c.generate(scenario.examples[0], temperature=1.0, top_p=0.9)
    assert g.tokens and len(g.probs) == len(g.tokens)


def test_panels_render_in_ascii(reverse):
    c = controller(reverse, eval_every=5)
    run_steps(c, 5)
    style = Style(ascii=True, color=False)
    for text in (metrics_text(c, style), grad_history_text(c, style),
                 predictions_text(c.evaluation, False, style)):
        assert text.plain.isascii(), text.plain
    assert "step      5 / 5" in metrics_text(c, style).plain


def _plot(n: int) -> PlotData:
    steps = np.arange(1, n + 1)
    losses = 2.5 * np.exp(-steps / (n / 4)) + 0.1
    losses[n // 2] = np.nan
    return PlotData(steps, losses, [n // 2, n], [1.0, 0.5], 2.565, 0.0, [n // 3], [n // 2])


def test_plot_ascii_has_no_braille_or_box_drawing():
    text = loss_plot_text(_plot(300), 50, 10, Style(ascii=True, color=False)).plain
    assert text.isascii(), text
    lines = text.splitlines()
    assert len(lines) == 10 and max(len(line) for line in lines) <= 50
    assert any("300" in line for line in lines)  # the last step on the x axis


def test_plot_unicode_draws_the_series():
    text = loss_plot_text(_plot(300), 50, 10, Style()).plain
    assert any("\u2800" <= ch <= "\u28ff" for ch in text)  # braille: the training loss


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_plot_legend_shows_the_marks_the_plot_draws(ascii):
    from tui_tfs.widgets.loss_plot import legend_text

    style = Style(ascii=ascii, color=False)
    data = _plot(300)
    plot = loss_plot_text(data, 50, 10, style).plain
    legend = legend_text(data, style).plain
    held_out = legend.split(" held-out")[0].split()[-1]  # the glyph before "held-out"
    change = legend.split(" lr/switch")[0].split()[-1]
    level = legend.split(" ln V")[0].split()[-1]
    inside = "\n".join(line[4:-1] for line in plot.splitlines()[1:-2])  # no axes, no frame
    assert inside.count(held_out) == len(data.eval_steps), (held_out, plot)
    assert change in inside, (change, plot)
    assert level in inside, (level, plot)


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_plot_marks_lr_changes_and_nan_steps_with_distinct_glyphs(ascii):
    """A learning-rate change and a NaN/Inf (skipped) step are different lines in the plot, and
    the legend names each by its glyph, whole, at the plot's width on an 80-column screen."""
    from tui_tfs.widgets.loss_plot import legend_text

    style = Style(ascii=ascii, color=False)
    data = _plot(300)  # lr change at step 100, NaN at step 150 (a held-out 'o' sits on it too)
    legend = legend_text(data, style, width=51).plain
    assert all(len(line) <= 51 for line in legend.splitlines()), legend
    change = legend.split(" lr/switch")[0].split()[-1]  # the glyph before "lr/switch"
    nan = legend.split(" NaN at 150")[0].split()[-1]  # the glyph before "NaN at 150"
    assert len(change) == 1 and len(nan) == 1 and change != nan, legend
    assert "NaN at 150, skipped" in legend
    plot = loss_plot_text(data, 51, 8, style).plain
    inside = [line[4:-1] for line in plot.splitlines()[1:-2]]  # no axes, no frame
    columns = {glyph: {i for line in inside for i, ch in enumerate(line) if ch == glyph}
               for glyph in (change, nan)}
    assert len(columns[change]) == 1 and len(columns[nan]) == 1, plot  # one vertical line each
    assert min(columns[change]) < min(columns[nan]), plot  # step 100 left of step 150
    if ascii:
        assert (plot + legend).isascii()
    # an lr raised at the step before the loss went NaN: the NaN's line is the one drawn
    data.changes, data.nonfinite = [299], [300]
    plot = loss_plot_text(data, 51, 8, style).plain
    inside = "\n".join(line[4:-1] for line in plot.splitlines()[1:-2])
    assert nan in inside and change not in inside, plot


def test_long_runs_are_downsampled_and_stay_cheap():
    xs, ys = downsample(np.arange(100_000), np.ones(100_000), 100)
    assert len(xs) == len(ys) == 100
    data = _plot(100_000)
    start = time.perf_counter()
    for _ in range(5):
        loss_plot_text(data, 50, 10, Style())
    assert (time.perf_counter() - start) / 5 < 0.5  # generous: ~20 ms here, 100k points


def test_metric_labels_never_touch_their_values():
    # A language model's held-out line is "perplexity", the longest label: it was once glued
    # to its number ("perplexity1.52").
    c = controller(load_scenario("tiny-lm"), eval_every=2)
    run_steps(c, 2)
    lines = metrics_text(c, Style(ascii=True, color=False)).plain.splitlines()[1:]
    labels = ["step", "loss", "lr", "grad norm", "tokens/s", "perplexity", "held loss", "broken"]
    assert [line[:len(label)] for line, label in zip(lines, labels)] == labels
    assert all(line[len(label)] == " " for line, label in zip(lines, labels)), lines
    assert re.match(r"perplexity +\d", lines[5]), lines


def test_generation_columns_fit_word_alternatives_whole():
    scenario = load_scenario("tiny-lm")
    g = controller(scenario, eval_every=0).generate("the cat sat on", temperature=1.0)
    text = generation_text(g, "temperature 1.00", Style(ascii=True)).plain
    assert "..." not in text and "…" not in text, text  # no entry is cut short
    for token, alts in list(zip(g.tokens, g.alternatives))[:4]:  # 16-column cells: 4 fit
        for alt, q in [(t, q) for t, q in alts if t != token][:3]:
            assert f"{alt} {q:.2f}" in text, text


@pytest.mark.parametrize("top_k, top_p", [(1, None), (3, None), (None, 0.5)])
def test_generation_alternatives_are_only_tokens_the_sampler_could_pick(top_k, top_p):
    """top-k 1 once listed `<pad> 0.00 <s> 0.00` as the alternatives: every alternative now
    has a probability above zero, and top-k k leaves at most k tokens per step."""
    scenario = load_scenario("tiny-lm")
    g = controller(scenario, eval_every=0).generate("the cat sat on", top_k=top_k, top_p=top_p)
    assert g.alternatives and all(q > 0 for alts in g.alternatives for _, q in alts)
    if top_k is not None:
        assert all(len(alts) <= top_k for alts in g.alternatives)
    text = generation_text(g, "settings", Style(ascii=True)).plain
    assert " 0.00" not in text, text
    if top_k == 1:
        assert "alt1" not in text and "no alternatives" in text, text


def test_generated_text_is_wrapped_whole_never_cut():
    """A long char-lm sample reads whole in a narrow panel: its lines, joined, give it back."""
    scenario = load_scenario("char-lm")
    g = controller(scenario, eval_every=0).generate("It is a truth universally acknowledged",
                                                    max_tokens=120)
    for width in (40, 76):
        lines = generation_text(g, "settings", Style(ascii=True), width=width).plain.splitlines()
        assert all(len(line) <= width for line in lines), lines
        body = lines[1:next(i for i, line in enumerate(lines) if line.startswith("tok "))]
        assert "".join(body) == f"{g.prompt!r} -> {g.text!r}", lines


def test_generation_panel_in_ascii_mode_is_ascii():
    """char-lm's labels make whitespace visible (␣ ⏎); ASCII mode asks for _ and \\n instead."""
    scenario = load_scenario("char-lm")
    c = controller(scenario, eval_every=0)
    g = c.generate("It was the best of times", max_tokens=200, ascii_only=True)
    labels = g.tokens + [t for alts in g.alternatives for t, _ in alts]
    assert all(label.isascii() for label in labels), sorted(set(labels))
    assert "_" in labels  # a space was among the choices: the test has something to check
    assert generation_text(g, "settings", Style(ascii=True)).plain.isascii()


def test_small_probabilities_never_read_as_zero():
    """An alternative with p = 0.004 could be picked: it reads 4e-3, not 0.00."""
    from scenarios import Completion

    g = Completion("the cat", "sat", ["sat"], [0.62], [[("sat", 0.62), ("on", 0.004)]])
    text = generation_text(g, "settings", Style(ascii=True)).plain
    assert "on 4e-3" in text and "0.00" not in text, text
