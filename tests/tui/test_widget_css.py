"""Each widget and screen carries its own look (DEFAULT_CSS in its class): mounted in a bare
App, with none of tui-tfs's app stylesheet, a widget has its size and border; the app's
stylesheet keeps only app-wide rules (Textual's own widgets in ASCII, where notices go)."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from textual.app import App

import tui_tfs
from tui_tfs.widgets import FormulaPanel, LayerTree, StatusLine, TensorView
from tui_tfs.widgets.loss_plot import LossPlot
from tui_tfs.widgets.metrics import MetricsPanel

pytestmark = pytest.mark.timeout(60)


def mounted(widgets, classes: str = ""):
    """The widgets' styles after mounting them in a plain App (no CSS of ours) at 80x24."""
    class Bare(App[None]):
        def compose(self):
            yield from widgets

        def on_mount(self):
            self.set_class(bool(classes), *classes.split())

    async def main():
        app = Bare()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return [(w.styles.width, w.styles.height, w.styles.border.top[0], w.region)
                    for w in widgets]
    return asyncio.run(main())


def test_widgets_bring_their_size_and_border_into_any_app():
    tree, panel, formula, status, plot, metrics = mounted(
        [LayerTree(), TensorView(), FormulaPanel(), StatusLine(), LossPlot(), MetricsPanel()])
    assert str(tree[0]) == "28" and tree[2] == "round" and tree[3].width == 28
    assert panel[2] == "round" and str(panel[1]) == "1fr"
    assert formula[2] == "round" and str(formula[1]) == "auto"
    assert status[3].height == 1 and status[2] == ""
    assert str(plot[1]) == "12" and plot[2] == "round"
    assert str(metrics[0]) == "27" and metrics[3].width == 27


def test_the_app_classes_still_reach_the_widgets():
    """-ascii draws every border in ASCII; -compact gives the tree the whole width."""
    tree, panel = mounted([LayerTree(), TensorView()], "-ascii -compact")
    assert tree[2] == panel[2] == "ascii"
    assert str(tree[0]) == "1fr"


def test_app_stylesheet_holds_only_app_wide_rules():
    from tui_tfs.screens.dialogs import Dialog, TooSmallScreen
    from tui_tfs.screens.explorer import ExplorerScreen
    from tui_tfs.screens.picker import PickerScreen
    from tui_tfs.screens.training import TrainingScreen

    tcss = (Path(tui_tfs.__file__).parent / "app.tcss").read_text(encoding="utf-8")
    rules = re.sub(r"/\*.*?\*/", "", tcss, flags=re.S)
    selectors = " ".join(re.findall(r"([^{}]+)\{", rules))
    assert "#" not in selectors and ".dialog" not in selectors, selectors
    ours = [LayerTree, TensorView, FormulaPanel, StatusLine, LossPlot, MetricsPanel,
            ExplorerScreen, PickerScreen, TrainingScreen, TooSmallScreen, Dialog]
    for cls in ours:
        assert cls.__name__ not in selectors, cls.__name__
    owners = {cls.__name__ for cls in ours for base in cls.__mro__
              if "DEFAULT_CSS" in base.__dict__ and base.__module__.startswith("tui_tfs")}
    assert owners == {cls.__name__ for cls in ours}
