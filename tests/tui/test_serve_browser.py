"""The served app in a real browser: headless Chromium from the system's packages, driven
through its DevTools protocol (tests/tui/devtools_browser.py).

Chromium opens the page of a real `tui-tfs serve` (token-protected), types the token into the
form, waits for the explorer, presses keys as a keyboard would, and reads the terminal's rows
from xterm.js's buffer in the page: the cross-attention map's token labels, the training
screen, colour, ASCII without colour (NO_COLOR), and a lesson. Skips where there is no
Chromium (.ci/run installs it).
"""
from __future__ import annotations

import asyncio
import re

import pytest
from conftest import forward_number, opening_trace
from devtools_browser import Browser, chromium_path
from serve_helpers import Served

from tui_tfs.shading import PROBABILITY_RAMP

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(chromium_path() is None,
                                 reason="no chromium here (apt-get install chromium "
                                        "chromium-driver): the browser test cannot run")]

TOKEN = "a-class-of-thirty"
BOX_AND_SHADES = set("─│╭╮╰╯├└▼▶◀░▒▓█▁▂▃▄▅▆▇●•∘·")


@pytest.fixture
def served(tmp_path):
    """served(*args, token=None, env=None) -> a listening `tui-tfs serve` (the tabs inherit
    its environment); stopped after the test."""
    started = []

    def start(*args: str, token: str | None = None, env: dict[str, str] | None = None) -> Served:
        env = {**(env or {}), **({"TUI_TFS_TOKEN": token} if token else {})}
        server = Served(list(args), tmp_path / f"serve{len(started)}.log", env)
        started.append(server)
        server.wait_listening()
        return server

    yield start
    for server in started:
        assert server.stop() == [], "an app outlived its server"


async def _to_softmax(browser: Browser, trace) -> list[str]:
    """From the explorer's first screen to the decoder's cross-attention map; its rows."""
    await browser.wait_for_text(f"forward 1/{len(trace)}")
    await browser.focus_terminal()
    await browser.press("l")
    await browser.wait_for_text("Run to layer")
    await browser.type_text("decoder.blocks.0.cross_attn.softmax")
    await browser.wait_for_text("decoder.blocks.0.cross_attn.softmax")
    await browser.press("Enter")
    softmax = forward_number(trace, "decoder.blocks.0.cross_attn.softmax")
    await browser.wait_for_text(f"forward {softmax}/{len(trace)}")
    await browser.press("a")
    return await browser.wait_for_text("queries down, keys across")


def _map_labels(rows: list[str], shades: str) -> tuple[bool, list[str]]:
    """(keys across read 3 1 4 1 5, the query labels down the map's rows: a label, then five
    cells of `shades` or blank (weight 0), not all blank)."""
    keys = any(re.search(r"(^|\s)3 1 4 1 5(\s|$)", row) for row in rows)
    cell = f"[ {re.escape(shades)}]"
    queries = [m.group(1) for row in rows
               if (m := re.search(rf"(?:^|[\s│|])(<s>|\d) ((?:{cell} ){{5}})", row))
               and m.group(2).strip()]
    return keys, queries


def test_browser_token_explorer_attention_map_and_training(served):
    server = served("reverse", "--host", "127.0.0.1", token=TOKEN)
    trace = opening_trace("reverse")

    async def run():
        async with Browser() as browser:
            await browser.open(server.url + "/")
            await _wait_for_js(browser, "document.querySelector('#token') !== null")
            assert await browser.js("window.xtermForTest === undefined")  # nothing of the app
            assert server.apps() == []
            await browser.js("document.querySelector('#token').focus()")
            await browser.type_text("not-the-token!")
            await browser.press("Enter")
            await _wait_for_js(browser, "document.querySelector('#wrong') !== null")
            assert server.apps() == []
            await browser.js("document.querySelector('#token').focus()")
            await browser.type_text(TOKEN)
            await browser.press("Enter")

            size = await _wait_for_js(browser, "window.xtermForTest && "
                                      "[window.xtermForTest.cols, window.xtermForTest.rows]")
            assert size[0] >= 80 and size[1] >= 23, size
            rows = await _to_softmax(browser, trace)
            assert any(_spread(colour) > 60 for colour in await browser.colours())  # in colour
            keys, queries = _map_labels(rows, PROBABILITY_RAMP[False][1:])
            assert keys, "\n".join(rows)
            assert queries == ["<s>", "5", "1", "4", "1", "3"], "\n".join(rows)  # the reversal

            await browser.press("t", ctrl=True)  # the training screen
            await browser.wait_for_text("space starts training")
            await browser.press(" ")
            await browser.wait_for_text("RUNNING")
            await _wait_for_steps(browser)
            await browser.press(" ")
            await browser.wait_for_text("PAUSED")

    asyncio.run(run())
    assert TOKEN not in server.output()


def test_browser_ascii_mode_without_colour(served):
    server = served("reverse", "--ascii", env={"NO_COLOR": "1"})
    trace = opening_trace("reverse")

    async def run():
        async with Browser() as browser:
            await browser.open(server.url + "/")  # loopback, no token: no prompt
            rows = await _to_softmax(browser, trace)
            return rows, await browser.colours()

    rows, colours = asyncio.run(run())
    assert colours and all(_spread(colour) <= 8 for colour in colours), colours  # greys only
    screen = "\n".join(rows)
    assert not BOX_AND_SHADES & set(screen), screen
    keys, queries = _map_labels(rows, PROBABILITY_RAMP[True][1:])
    assert keys and queries == ["<s>", "5", "1", "4", "1", "3"], screen


def _spread(colour: tuple[int, int, int]) -> int:
    """0 for a grey; large for a saturated colour."""
    return max(colour) - min(colour)


async def _wait_for_steps(browser: Browser, seconds: float = 60) -> int:
    """The training screen's step count once it is above 0 (it trains in the browser's app)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    rows = []
    while loop.time() < deadline:
        rows = await browser.rows()
        match = re.search(r"step\s+(\d+) / \d+", "\n".join(rows))
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
        await asyncio.sleep(0.3)
    raise AssertionError("no training step in the browser:\n" + "\n".join(rows))


async def _wait_for_js(browser: Browser, expression: str, seconds: float = 60):
    """The expression's value once it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        value = await browser.js(expression)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true in the browser: {expression}; the page showed:\n"
                         f"{await browser.js('document.body.innerText')}")


def test_browser_lesson(served):
    server = served("--lesson", "masks")

    async def run():
        async with Browser() as browser:
            await browser.open(server.url + "/")
            await browser.wait_for_text("Two inputs, one batch")
            await browser.focus_terminal()
            await browser.press("g")  # the explorer at the step's place
            rows = await browser.wait_for_text("queries down, keys across")
            assert any("encoder.blocks.0.self_attn" in row for row in rows), "\n".join(rows)
            await browser.press("Escape")  # back to the lesson
            await browser.wait_for_text("Two inputs, one batch")

    asyncio.run(run())
