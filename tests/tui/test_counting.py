"""People count from 1: no screen of the explorer, and no check message, says head 0, item 0,
query 0 (code names such as `decoder.blocks.0.self_attn` stay as they are)."""
from __future__ import annotations

import re

import pytest

from conftest import drive, screen_text
from tui_tfs.screens import ReportScreen

pytestmark = pytest.mark.timeout(240)

# a counted word followed by 0 (or h0, p0, "(0," as an element index)
ZERO_BASED = re.compile(r"\b(head|item|query|key|batch|position|row|event|example|layer|step|"
                        r"element|column|token)s? 0\b|\b[hp]0\b|\[item 0|\(0[,)]", re.IGNORECASE)
VIEWS = ("t", "a", "A", "d", "P", "E", "T")


def zero_based(text: str) -> list[str]:
    return [line for line in text.splitlines() if ZERO_BASED.search(line)]


def test_the_pattern_finds_zero_based_counts():
    assert zero_based("head 0/4 | scores\nitem 0\n[item 0, head 1]\nquery 0 key 3\n  h0  h1")
    assert zero_based("element\n(0, 3)   1.0") and zero_based("at position 0 changes")
    assert not zero_based("decoder.blocks.0.self_attn  head 1/4  item 1/4  norm 0.0\n"
                          "min 0 max 0  zeros 0  NaN 0  Inf 0  0..1 fixed  -0.3 ●•∘· 0 ░▒▓█")


def walk_views(seen: list[tuple[str, str]]):
    """Every view at the cursor: the screen and each panel's whole text (scrolled parts too)."""
    async def walk(pilot):
        app = pilot.app
        for key in VIEWS:
            await pilot.press(key)
            await pilot.pause()
            where = f"{app.session.event.path} view {key}"
            seen.append((where, screen_text(app)))
            seen.append((where, app.screen.query_one(f"#{app.screen.view_name}").text))
    return walk


def at(path: str, phase: str = "forward"):
    async def go(pilot):
        app = pilot.app
        app.session.cursor.to_path(path, phase)
        app.session.goto(app.session.cursor.index)
        app.screen.observe()
        await pilot.pause()
    return go


@pytest.mark.parametrize("scenario", ["reverse", "addition"])
def test_no_view_counts_from_zero(make_app, scenario):
    seen: list[tuple[str, str]] = []
    walk = walk_views(seen)
    layer = {"reverse": "decoder.blocks.0.cross_attn", "addition": "blocks.0.self_attn"}[scenario]
    drive(make_app(scenario), "r",  # a batch of 4 items, so items are cycled and shown
          at(f"{layer}.softmax"), walk, "m", "h", "j", walk,
          at(f"{layer}.softmax", "backward"), "t", "G", walk,
          at("lm_head"), walk, at("loss.cross_entropy", "backward"), walk)
    assert len(seen) == 5 * 2 * len(VIEWS)
    bad = [(where, zero_based(text)) for where, text in seen if zero_based(text)]
    assert not bad, bad[:3]
    # and the counting that is shown starts at 1
    text = " ".join(" ".join(t.split()) for _, t in seen)  # a header may wrap between words
    assert "item 2/4" in text and "head 2/4" in text
    # the temperature view names its query row from 1 ("row 3 (token): ...")
    assert re.search(r"\brow [1-9][0-9]* \(", text), text


def test_check_messages_and_the_gradient_check_count_from_one(make_app):
    """With the causal mask broken the checks name attention cells and positions; the gradient
    check lists parameter elements: all counted from 1."""
    seen = {}

    def report_body(app) -> str:
        assert isinstance(app.screen, ReportScreen)
        return app.screen.query_one("#report-body").content.plain

    async def break_mask(pilot):
        pilot.app.session.toggle_break("no_causal_mask")
        pilot.app.screen.observe()
        await pilot.pause()

    async def grab(key):
        async def step(pilot):
            seen[key] = report_body(pilot.app)
            await pilot.press("escape")
            await pilot.pause()
        return step

    async def checks(pilot):
        await pilot.press("c")
        await pilot.pause()
        await (await grab("checks"))(pilot)

    async def gradient(pilot):
        await at("lm_head")(pilot)
        await pilot.press("k")
        await pilot.pause()
        await (await grab("gradient"))(pilot)

    drive(make_app("reverse"), break_mask, checks, gradient)
    assert "queries attend to future tokens" in seen["checks"]
    assert re.search(r"at item 1, head \d, query \d, key \d", seen["checks"])
    assert "logits at position 1 " in seen["checks"]
    assert not zero_based(seen["checks"]), zero_based(seen["checks"])
    assert "counted from 1" in seen["gradient"]
    assert not zero_based(seen["gradient"]), zero_based(seen["gradient"])
