"""The probe scrubber and the diff view, driven headless with Pilot at 80x23 and 80x24,
Unicode and ASCII: `a` on the training screen opens the probe's attention at the newest
snapshot; arrows move between snapshots, each map the one the probe recorded there; o, t and d
show every layer x head, the heatmaps over time and the diff view."""
from __future__ import annotations

import pytest
from conftest import drive, screen_text, snapshotted_every

from tui_tfs import render
from tui_tfs.probe_watch import ProbeWatch
from tui_tfs.screens.diff import DiffScreen
from tui_tfs.screens.probe import ProbeScreen
from tui_tfs.widgets.probe_panel import ProbePanel
from tui_tfs.shading import Scale
from tui_tfs.diff import diff_stats, parameter
from tui_tfs.shading import short
from tui_tfs.training import TrainingController

pytestmark = pytest.mark.timeout(300)
STEPS, EVERY = 10, 5


def trained(app) -> tuple[TrainingController, ProbeWatch]:
    """The session's run, STEPS steps trained, a snapshot (and a probe) every EVERY steps."""
    s = app.session
    c = s.training = snapshotted_every(TrainingController(s.scenario, s.model, eval_every=0),
                                       EVERY)
    watch = ProbeWatch(c)
    c.step_watchers.append(watch)
    c.total_steps = STEPS
    c.start()
    while c.running:
        c.run_for(1.0)
    return c, watch


def map_lines(watch, frame, layer, head, style) -> list[str]:
    """The rows of the map as the explorer's renderer draws them (labels and cells)."""
    rows, cols = watch.labels(frame, layer)
    text = render.heatmap(frame.attention[layer][head], rows, cols, None, style,
                          scale=Scale.probability("softmax weights")).plain
    return [line.rstrip() for line in text.split("\n")[2:]]  # after the two legend lines


@pytest.mark.parametrize("size", [(80, 23), (80, 24)])
@pytest.mark.parametrize("ascii", [False, True])
def test_scrubbing_shows_each_snapshots_own_attention(make_app, size, ascii):
    app = make_app(ascii=ascii)
    seen = {}

    async def flow(pilot):
        c, watch = trained(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        layer = screen.attn_layer
        assert layer == "decoder.blocks.1.cross_attn"  # where reversal's anti-diagonal forms
        for index, key in ((2, None), (1, "left"), (0, "home"), (2, "end")):
            if key:
                await pilot.press(key)
                await pilot.pause()
            frame = watch.frames[index]
            text = screen_text(app)
            seen[index] = text
            assert f"step {frame.step} (snapshot {index + 1} of 3)" in text
            assert f"probe loss {frame.loss:.4g}" in text
            if frame.step == 0:
                assert "before training" in text
            else:
                assert f"training loss {c.history[frame.step - 1].loss:.4g}" in text
            lines = [line.strip() for line in text.splitlines()]
            for row in map_lines(watch, frame, layer, 0, app.style):
                assert row.strip() in lines  # the map on screen is this snapshot's own
        assert seen[0] != seen[2]  # training changed the attention
        await pilot.press("h")  # the next head: its own map
        await pilot.pause()
        text = screen_text(app)
        assert "head 2/4" in text
        lines = [line.strip() for line in text.splitlines()]
        for row in map_lines(watch, watch.frames[2], layer, 1, app.style):
            assert row.strip() in lines
        await pilot.press("o")
        await pilot.pause()
        body = app.screen.query_one(ProbePanel).text
        for name in ("enc1 self", "enc2 self", "dec1 self", "dec1 cross", "dec2 self",
                     "dec2 cross"):
            assert name in body
        await pilot.press("t")
        await pilot.pause()
        body = app.screen.query_one(ProbePanel).text
        assert "gradient norm per layer" in body and "attention entropy per head" in body
        for name in ("enc emb", "enc1", "dec2", "lm_head", "dec2 cross"):
            assert name in body
        text = screen_text(app)
        assert "step 0 (snapshot 1 of 3)" not in text  # end: the newest snapshot
        assert "? Help" in text.splitlines()[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ProbeScreen)

    drive(app, flow, size=size)


def test_the_training_screen_probes_its_run_from_the_start(make_app):
    app = make_app()

    async def flow(pilot):
        await pilot.press("ctrl+t")
        await pilot.pause()
        c = app.session.training
        watches = [w for w in c.step_watchers if isinstance(w, ProbeWatch)]
        assert len(watches) == 1 and [f.step for f in watches[0].frames] == [0]
        assert watches[0].text == app.session.scenario.examples[0]

    drive(app, flow)


def test_diff_view_between_snapshots_and_across_one_step(make_app):
    app = make_app()

    async def flow(pilot):
        c, watch = trained(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.press("a", "home", "d")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        text = screen_text(app)
        assert "A = step 0 (1 of 3), B = step 10 (3 of 3)" in text
        name = next(iter(c.model.packed.slices))
        slices = dict(c.model.packed.slices)
        shapes = {p.name: p.data.shape for p in c.model.params()}
        a = parameter(watch.snapshots.kept[0].weights, slices, shapes, name)
        b = parameter(c.model.packed.data, slices, shapes, name)
        stats = diff_stats(a, b)
        assert stats.change_norm > 0
        assert f"||B-A|| {short(stats.change_norm, 4)}" in text
        assert f"||A|| {short(stats.a_norm, 4)}" in text
        # A onto B: the same snapshot twice diffs to zero
        await pilot.press("full_stop", "full_stop")
        await pilot.pause()
        text = screen_text(app)
        assert "A = step 10 (3 of 3), B = step 10 (3 of 3)" in text
        assert "||B-A|| 0 " in text and "every value is 0" in text
        # one step: before it (A) and after it (B)
        c.total_steps = STEPS + 5
        await pilot.press("n")
        await pilot.pause()
        text = screen_text(app)
        assert c.step == STEPS + 1
        assert f"A = before step {STEPS + 1}" in text and f"B = after step {STEPS + 1}" in text
        assert "||B-A|| 0 " not in text
        # the probe's attention is a tensor too
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert "probe attention dec2 cross head 1/4" in screen_text(app)

    drive(app, flow, size=(80, 23))
