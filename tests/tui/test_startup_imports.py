"""What an explorer that never trains leaves out: the plotting library (plotext: 7 MB and
0.3-0.5 s of import) and the syntax highlighter (pygments: 2 MB) load only when the loss plot
or the code screen first draws. Thirty sessions on one machine each keep that much less
(tests/tui/measure_class.py). Run in a fresh interpreter: this one has imported everything."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = """if True:
    import asyncio, sys
    from tui_tfs.app import TfsApp

    def loaded():
        return sorted(m for m in ("plotext", "pygments") if m in sys.modules)

    async def main():
        app = TfsApp("reverse", None, ascii=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for key in ("n", "n", "a", "d", "t"):
                await pilot.press(key)
                await pilot.pause()
            print("explorer:", loaded())
            await pilot.press("ctrl+t", "space")
            while app.session.training.step < 2:
                await pilot.pause(0.05)
            await pilot.press("space")
            await pilot.pause(0.6)
            print("training:", loaded())
            print("plot:", "loss: reverse" in str(app.screen.query_one("#tr-plot").border_title))
    asyncio.run(main())
"""


@pytest.mark.timeout(120)
def test_the_explorer_starts_without_the_plotting_and_highlighting_libraries():
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=110, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert "explorer: []" in lines
    assert "training: ['plotext']" in lines and "plot: True" in lines
