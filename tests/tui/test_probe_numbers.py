"""The numbers behind the heatmaps over training time and the diff view, against independent
computations: gradient norms per layer from the recorded backward of the same step, column
means by hand, diff statistics by NumPy; an unchanged tensor diffs to exactly zero."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from engine.maths.models import build_model
from engine.trace.trace import record_step
from scenarios import load_scenario
from tui_tfs.diff import diff_stats, diff_text, parameter
from conftest import snapshotted_every
from tui_tfs.probe_watch import ProbeWatch, grad_norms_over_time, watch_training
from tui_tfs.style import Style
from tui_tfs.time_heatmap import bin_columns, short_layer
from tui_tfs.training import TrainingController


def independent_group(name: str) -> str:
    """"encoder.blocks.1.ffn.w1" -> "encoder.blocks.1"; "lm_head.w" -> "lm_head"."""
    parts = name.split(".")
    if "blocks" in parts:
        at = parts.index("blocks")
        return ".".join(parts[: at + 2])
    return ".".join(parts[:-1])


def test_gradient_norm_heatmap_rows_are_the_recorded_backwards_norms_per_block():
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    expected = []
    for step in range(1, 4):
        before = build_model(c.model.config)
        before.packed.data[...] = c.model.packed.data
        c.total_steps = step  # one step at a time, as the app trains them
        c.start()
        while c.running:
            c.run_for(1.0)
        assert c.step == step
        trace = record_step(before, c.trainer.loss_fn, c.last_batch, None, [[]], [[]])
        sums: dict[str, float] = defaultdict(float)
        for name, grad in trace.param_grads().items():
            sums[independent_group(name)] += float(np.sum(grad.astype(np.float64) ** 2))
        expected.append({g: math.sqrt(v) for g, v in sums.items()})
    groups, steps, norms = grad_norms_over_time(c)
    assert list(steps) == [1, 2, 3]
    assert set(groups) == set(expected[0])
    for col, want in enumerate(expected):
        for row, group in enumerate(groups):
            assert norms[row, col] == pytest.approx(want[group], rel=1e-4), (group, col)


def test_columns_are_means_of_neighbouring_steps():
    values = np.arange(2 * 10, dtype=np.float64).reshape(2, 10) ** 1.5
    values[1, 3] = np.nan  # left out of its column's mean
    binned, runs = bin_columns(values, 4)
    assert [list(r) for r in runs] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    for c, run in enumerate(runs):
        assert binned[0, c] == pytest.approx(values[0, run].mean())
        assert binned[1, c] == pytest.approx(np.nanmean(values[1, run]))
    same, _ = bin_columns(values, 50)  # more room than steps: a column per step
    np.testing.assert_array_equal(same[0], values[0])


def test_short_layer_names_count_blocks_from_one():
    assert short_layer("encoder.blocks.0.self_attn") == "enc1 self"
    assert short_layer("decoder.blocks.1.cross_attn") == "dec2 cross"
    assert short_layer("blocks.0.self_attn") == "blk1 self"
    assert short_layer("decoder.tok_emb") == "dec emb"
    assert short_layer("lm_head") == "lm_head"


def test_diff_statistics_are_numpys():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(7, 5)).astype(np.float32)
    b = a + rng.normal(scale=0.1, size=a.shape).astype(np.float32)
    b[2] = a[2]
    s = diff_stats(a, b)
    d = b.astype(np.float64) - a.astype(np.float64)
    assert s.change_norm == pytest.approx(np.linalg.norm(d), rel=1e-12)
    assert s.a_norm == pytest.approx(np.linalg.norm(a.astype(np.float64)), rel=1e-12)
    assert s.relative == pytest.approx(np.linalg.norm(d) / np.linalg.norm(a.astype(np.float64)))
    assert s.max_abs == pytest.approx(np.abs(d).max())
    assert s.mean == pytest.approx(d.mean())
    assert (s.changed, s.size) == (30, 35)
    with pytest.raises(ValueError, match="same shape"):
        diff_stats(a, b[:3])


def test_unchanged_tensors_diff_to_zero_and_draw_blank():
    scenario = load_scenario("reverse")
    c = snapshotted_every(TrainingController(scenario, scenario.build_model(), eval_every=0), 2)
    watch = ProbeWatch(c)
    c.step_watchers.append(watch)
    c.total_steps = 4
    c.start()
    while c.running:
        c.run_for(1.0)
    assert watch_training(c) is watch and watch.snapshots.steps == [0, 2, 4]
    first, last = watch.snapshots.kept[0], watch.snapshots.kept[-1]
    slices = dict(c.model.packed.slices)
    shapes = {p.name: p.data.shape for p in c.model.params()}
    emb = "encoder.tok_emb.weight"
    a, b = (parameter(s.weights, slices, shapes, emb) for s in (first, last))
    pad = c.model.config.pad_id
    # the padding token's row gets no gradient: Adam leaves it exactly where it was
    zero = diff_stats(a[pad], b[pad])
    assert (zero.change_norm, zero.relative, zero.max_abs, zero.changed) == (0.0, 0.0, 0.0, 0)
    assert diff_stats(a, b).changed > 0  # the other rows did move
    # the same snapshot twice: every parameter's diff is zero, and its map is blank
    for name in slices:
        same = parameter(last.weights, slices, shapes, name)
        s = diff_stats(same, same.copy())
        assert (s.change_norm, s.relative, s.changed) == (0.0, 0.0, 0)
    text = diff_text(emb, a, a.copy(), "step 4", "step 4", Style(), 76).plain
    assert "every value is 0" in text and "changed 0 of 416" in text
    cells = text.split("0 blank\n")[1]
    assert set(cells.replace("\n", "").split()) <= {str(i) for i in range(1, 14)}  # labels only


def test_a_typed_probe_is_run_again_at_every_kept_snapshot_and_a_bad_one_changes_nothing():
    from engine.training.probe import probe_frame
    from scenarios import ScenarioError

    scenario = load_scenario("reverse")
    c = snapshotted_every(TrainingController(scenario, scenario.build_model(), eval_every=0), 2)
    watch = ProbeWatch(c)
    c.step_watchers.append(watch)
    c.total_steps = 4
    c.start()
    while c.running:
        c.run_for(1.0)
    watch.set_probe("2718", c)
    assert watch.text == "2718" and [f.step for f in watch.frames] == watch.snapshots.steps
    for snapshot, frame in zip(watch.snapshots.kept, watch.frames):
        fresh = snapshot.model()
        want = probe_frame(fresh, scenario.batch_for("2718"), snapshot.step)
        for layer in want.layers:
            np.testing.assert_array_equal(frame.attention[layer], want.attention[layer])
    assert watch.tokens("source") == list("2718")
    with pytest.raises(ScenarioError):
        watch.set_probe("not digits", c)
    assert watch.text == "2718" and watch.tokens("source") == list("2718")


def test_the_probe_runs_at_the_controllers_own_snapshots_from_the_start_of_the_run():
    from engine.training.probe import probe_frame
    from engine.training.snapshots import Snapshots

    scenario = load_scenario("reverse")
    c = snapshotted_every(TrainingController(scenario, scenario.build_model(), eval_every=0), 3)
    c.total_steps = 4
    c.start()
    while c.running:
        c.run_for(1.0)
    assert c.snapshots.steps == [0, 3, 4]  # 4: the pause at the run's end
    watch = watch_training(c)  # started mid-run: the history so far is probed
    assert [f.step for f in watch.frames] == [0, 3, 4]
    c.total_steps = 10
    c.start()
    while c.running:
        c.run_for(1.0)
    watch_training(c)  # opening a view again probes the snapshot the pause took
    assert c.snapshots.steps == [0, 3, 6, 9, 10]
    assert [f.step for f in watch.frames] == [0, 3, 4, 6, 9, 10]  # 4's frame outlives its snapshot
    assert watch.snapshots is c.snapshots
    assert not any(isinstance(v, Snapshots) for v in vars(watch).values())  # no store of its own
    for snapshot in c.snapshots.kept:  # each frame is the probe of the model at that snapshot
        frame = next(f for f in watch.frames if f.step == snapshot.step)
        want = probe_frame(snapshot.model(), watch.batch, snapshot.step)
        for layer in want.layers:
            np.testing.assert_allclose(frame.attention[layer], want.attention[layer], atol=1e-6)
