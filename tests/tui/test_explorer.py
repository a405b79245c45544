"""Pilot tests of the explorer at 80x24: every key flow, checked on the screen and the session."""
from __future__ import annotations

import pytest
from textual.widgets import ContentSwitcher

from conftest import drive, forward_number, screen_text
from tui_tfs import render
from tui_tfs.screens import ChoiceScreen, ExplorerScreen, HelpScreen, PromptScreen, ReportScreen
from tui_tfs.widgets import LayerTree

pytestmark = pytest.mark.timeout(120)


def check(fn):
    async def step(pilot):
        result = fn(pilot.app)
        if hasattr(result, "__await__"):
            await result
    return step


def test_opens_explorer_with_all_panels(make_app):
    seen = {}

    def look(app):
        seen["screen"] = app.screen
        seen["text"] = screen_text(app)
        seen["trace"] = app.session.trace

    drive(make_app(), check(look))
    assert isinstance(seen["screen"], ExplorerScreen)
    text, trace = seen["text"], seen["trace"]
    assert f"forward 1/{len(trace)}" in text and f"loss {trace.loss:.4f}" in text
    assert "Token embedding" in text  # the formula panel
    assert "tok_emb" in text  # the tree
    assert "n Next" in text  # the footer


def test_stepping_keys(make_app):
    seen = []
    rec = check(lambda app: seen.append((app.session.cursor.index, app.session.event.phase,
                                         app.session.event.path)))
    drive(make_app(), "n", rec, "n", rec, "p", rec, "o", rec, "i", rec, "u", rec, "O", rec,
          "e", rec, "b", rec)
    indices = [s[0] for s in seen]
    assert indices[:3] == [1, 2, 1]
    assert seen[-2][1] == "forward" and seen[-1][1] == "backward"
    assert seen[-1][2] == "loss.cross_entropy"


def test_status_line_shows_the_stepping_level(make_app):
    """`o` keeps the level of the node it stepped over and `u` climbs from it: the status line
    shows that level, split from the rest of the event's path, so `u`'s landing is no surprise."""
    seen = []

    def grab(app):
        status = screen_text(app).splitlines()[-2]  # the row above the footer
        seen.append((status.strip(), app.session.level_path(), app.session.event.path))

    rec = check(grab)
    app = drive(make_app(), rec, "i", "o", "o", "o", rec, "n", rec, "u", rec)
    start, over, after_next, after_out = seen
    at = forward_number(app.session.trace, "encoder.blocks.0.self_attn.q_proj")
    assert start[0].endswith("level encoder › tok_emb")  # a new trace starts at the top level
    # i, then o three times: over tok_emb, pos_enc and emb_drop at level 2, onto blocks.0
    assert over[1:] == ("encoder.blocks.0", "encoder.blocks.0.self_attn.q_proj")
    assert over[0].endswith("level encoder.blocks.0 › self_attn.q_proj"), over
    assert over[0].startswith(f"▶ forward {at}/{len(app.session.trace)}  loss ")
    # n lands on the next event at its leaf: the level is the whole path, nothing after it
    assert after_next[0].endswith("level encoder.blocks.0.self_attn.k_proj"), after_next
    assert "›" not in after_next[0]
    # u climbs one level from the leaf (self_attn), steps over it, and keeps that level
    assert after_out[1:] == ("encoder.blocks.0.drop1", "encoder.blocks.0.drop1")
    assert after_out[0].endswith("level encoder.blocks.0.drop1"), after_out
    assert all(len(status) <= 78 and "…" not in status for status, _, _ in seen)


def test_status_line_level_in_ascii(make_app):
    seen = {}
    app = drive(make_app(ascii=True), "o", check(lambda app: seen.update(text=screen_text(app))))
    status = seen["text"].splitlines()[-2]
    at = forward_number(app.session.trace, "decoder.tok_emb")  # o: over the whole encoder
    assert status.strip().startswith(f">> forward {at}/{len(app.session.trace)}  loss ")
    assert status.endswith("level decoder > tok_emb"), status


def test_tensor_statistics_read_whole_in_the_panel(make_app):
    """At 80x24 the statistics wrap to the tensor panel's 47 columns (before, "Inf" was past
    the panel's edge); switching to another view and back lays them out again."""
    seen = []

    def grab(app):
        seen.append((screen_text(app), app.session.trace.stats(app.session.event.index,
                                                               app.session.view.tensor)))

    rec = check(grab)
    drive(make_app(), rec, "a", "t", rec, "b", rec)
    for text, stats in seen:
        # the panel's text runs from column 30 (after the tree, a border and padding) for 47
        rows = [line[30:77] for line in text.splitlines()]
        shape = "(" + ", ".join(str(d) for d in stats.shape) + ")"
        for field in (f"{shape} {stats.dtype}", f"zeros {stats.zeros}",
                      f"NaN {stats.nan}  Inf {stats.inf}"):
            assert any(field in row for row in rows), (field, text)
        for name in ("norm", "min", "max", "mean", "std"):
            field = f"{name} {render.short_number(getattr(stats, name))}"
            assert any(field in row for row in rows), (field, text)


def test_tree_marks_the_current_event_and_picks_events(make_app):
    seen = {}

    async def pick(pilot):
        app = pilot.app
        tree = app.screen.query_one(LayerTree)
        seen["cursor"] = tree.cursor_node.data
        tree.focus()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        seen["after"] = app.session.cursor.index

    drive(make_app(), "n", "n", check(lambda a: None), pick)
    assert seen["cursor"] == 2
    assert seen["after"] != 2


def test_run_to_layer_and_attention_softmax(make_app):
    seen = {}

    async def choose(pilot):
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ChoiceScreen)
        for ch in "decoder.blocks.0.cross_attn.softmax":
            await pilot.press(ch if ch != "." else "full_stop")
        await pilot.press("enter")
        await pilot.pause()
        seen["path"] = pilot.app.session.event.path

    def look(app):
        seen["text"] = screen_text(app)
        seen["view"] = app.screen.query_one("#views", ContentSwitcher).current

    drive(make_app(), choose, "a", check(look))
    assert seen["path"] == "decoder.blocks.0.cross_attn.softmax"
    assert seen["view"] == "attention"
    assert "cross-attention" in seen["text"]
    assert "3 1 4 1 5" in seen["text"]  # key tokens across the top
    assert "<s>" in seen["text"]  # query tokens down the side


def test_attention_stages_heads_and_mask_glyph(make_app):
    seen = {}

    def goto_self_attn(app):
        app.session.goto(app.session.trace.find_path("decoder.blocks.0.self_attn.softmax"))
        app.screen.observe()

    def look(app):
        seen["stage"], seen["head"] = app.session.view.stage, app.session.view.head
        seen["text"] = screen_text(app)

    drive(make_app(), check(goto_self_attn), "a", "s", "S", "S", "h", "h", check(look))
    assert seen["stage"] == "masked" and seen["head"] == 2
    assert "[masked]" in seen["text"] and "head 3/4 |" in seen["text"]
    assert "×" in seen["text"]


def test_overview_and_other_views(make_app):
    texts = {}
    grab = lambda name: check(lambda app: texts.__setitem__(name, screen_text(app)))  # noqa: E731
    grab_panel = lambda name: check(  # noqa: E731
        lambda app: texts.__setitem__(name, app.screen.query_one(f"#{name}").text))
    drive(make_app(), "A", grab("overview"), "P", grab("positional"), "E", grab_panel("embedding"),
          "T", grab("temperature"), "plus", grab("hotter"), "b", "n", "n", "d", grab("grads"),
          "t", "right_square_bracket", grab("tensor"), "G", grab("gradient"), "v", grab("numbers"))
    assert "all layers x heads" in texts["overview"] and "h4" in texts["overview"]
    assert "sinusoids" in texts["positional"]
    assert "tok_emb.weight" in texts["embedding"] and "cosine" in texts["embedding"]
    assert "entropy" in texts["temperature"] and "T=2*" in texts["hotter"]
    assert "lm_head" in texts["grads"] and "not reached yet" in texts["grads"]
    assert "norm" in texts["tensor"]
    assert "[" in texts["gradient"]
    assert "." in texts["numbers"]


def test_batch_item_cycling_and_new_batch(make_app):
    seen = {}
    drive(make_app(), "r", "m", check(lambda app: seen.update(
        item=app.session.view.item, size=app.session.batch_size, src=app.session.source)))
    assert seen["size"] == 4 and seen["item"] == 1 and "random" in seen["src"]


def test_next_example_and_own_input(make_app):
    seen = {}

    async def type_input(pilot):
        await pilot.press("I")
        await pilot.pause()
        assert isinstance(pilot.app.screen, PromptScreen)
        inp = pilot.app.screen.query_one("Input")
        inp.value = ""
        await pilot.press("9", "8", "7", "enter")
        await pilot.pause()
        seen["src"] = pilot.app.session.trace.src_tokens[0]
        seen["text"] = screen_text(pilot.app)

    drive(make_app(), "N", check(lambda app: seen.update(example=app.session.example)),
          type_input)
    assert seen["example"] == 1
    assert seen["src"] == ["9", "8", "7"]


def test_bad_input_is_a_notice_not_a_crash(make_app):
    seen = {}

    async def type_input(pilot):
        await pilot.press("I")
        await pilot.pause()
        pilot.app.screen.query_one("Input").value = "12x"
        await pilot.press("enter")
        await pilot.pause()
        seen["screen"] = pilot.app.screen
        seen["notes"] = [n.message for n in pilot.app._notifications]

    drive(make_app(), type_input)
    assert isinstance(seen["screen"], ExplorerScreen)
    assert any("x" in n for n in seen["notes"])


def test_checks_report(make_app):
    seen = {}
    drive(make_app(), "c", check(lambda app: seen.update(screen=app.screen,
                                                          text=screen_text(app))), "escape",
          check(lambda app: seen.update(back=app.screen)))
    assert isinstance(seen["screen"], ReportScreen)
    assert "findings" in seen["text"] and "PASS" in seen["text"]
    assert isinstance(seen["back"], ExplorerScreen)


def test_gradient_check_report(make_app):
    seen = {}

    def to_linear(app):
        app.session.goto(app.session.trace.find_path("lm_head"))
        app.screen.observe()

    drive(make_app(), check(to_linear), "k",
          check(lambda app: seen.update(screen=app.screen, text=screen_text(app))))
    assert isinstance(seen["screen"], ReportScreen)
    assert "lm_head" in seen["text"] and "relative error" in seen["text"]


def test_gradient_check_labels_the_floored_error_honestly(make_app):
    """Tiny gradients are judged by |a-n| / floor, not relatively: the column is "err", a
    legend names the engine's floor, and the rows it applied to are starred."""
    seen = {}

    def to_k_proj(app):  # k_proj's gradients are ~1e-6, most of them under the floor
        app.session.goto(app.session.trace.find_path("decoder.blocks.0.self_attn.k_proj"))
        app.screen.observe()

    def look(app):
        seen.update(text=screen_text(app), result=app.session.gradient_check())

    drive(make_app(), check(to_k_proj), "k", check(look))
    text, result = seen["text"], seen["result"]
    assert "rel err" not in text and "max relative error" not in text
    legend = f"err: relative error |a-n|/(|a|+|n|); * absolute below floor {result.floor:.3g}"
    assert legend in text  # on one line of the 80-column screen, floor value included
    header = next(line for line in text.splitlines() if "analytic" in line)
    assert header.split()[-4:-2] == ["numeric", "err"]
    floored = (abs(result.analytic) + abs(result.numeric) < result.floor).sum()
    assert floored > 0 and text.count("*") >= min(floored, 9)  # starred rows (those on screen)


def test_break_switch_reruns_trace(make_app):
    seen = {}

    async def toggle(pilot):
        await pilot.press("B")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ChoiceScreen)
        await pilot.press("enter")  # the first switch: no_causal_mask
        await pilot.pause()
        seen["on"] = pilot.app.session.breaks.no_causal_mask
        seen["text"] = screen_text(pilot.app)

    drive(make_app(), toggle)
    assert seen["on"] is True
    assert "BROKEN: no_causal_mask" in seen["text"]


def test_find_nonfinite_and_grad_norm(make_app):
    seen = {}

    async def grad(pilot):
        await pilot.press("g")
        await pilot.pause()
        pilot.app.screen.query_one("Input").value = "1.0"
        await pilot.press("enter")
        await pilot.pause()
        seen["grad"] = pilot.app.session.event.path

    drive(make_app(), "x", check(lambda app: seen.update(x=app.session.cursor.index)), grad)
    assert seen["x"] == 0  # an untrained model has no NaN: the cursor stays
    assert seen["grad"] in ("loss.cross_entropy", "lm_head")


def test_help_lists_every_key(make_app):
    seen = {}
    drive(make_app(), "question_mark", check(lambda app: seen.update(
        screen=app.screen, body=app.screen.query_one("#help-body").content.plain)))
    assert isinstance(seen["screen"], HelpScreen)
    for binding in ExplorerScreen.BINDINGS:
        assert (binding.tooltip or binding.description) in seen["body"]


def test_command_palette_lists_the_actions(make_app):
    seen = {}

    def commands(app):
        seen["titles"] = [c.title for c in app.get_system_commands(app.screen)]

    drive(make_app(), check(commands))
    for title in ("Next event", "Step into the layer (one level down)", "Gradient check of this "
                  "parameter", "Toggle a break-it switch and re-run", "Attention overview: all "
                  "layers x heads"):
        assert title in seen["titles"]


def test_palette_command_runs_the_action(make_app):
    seen = {}

    async def run(pilot):
        app = pilot.app
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Next event")
        await command.callback()
        await pilot.pause()
        seen["index"] = app.session.cursor.index

    drive(make_app(), run)
    assert seen["index"] == 1


def test_escape_returns_to_picker(make_app):
    from tui_tfs.screens import PickerScreen

    seen = {}
    drive(make_app(), "escape", check(lambda app: seen.update(screen=app.screen)))
    assert isinstance(seen["screen"], PickerScreen)
