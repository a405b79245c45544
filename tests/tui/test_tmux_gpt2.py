"""The real command on a GPT-2 folder in tmux at 80x23 (a standard terminal inside tmux):
`tui-tfs explore DIR` opens a small random GPT-2 saved by `transformers` with a BPE tokenizer
trained by `tokenizers`; the attention map is labelled with BPE pieces, the leading space drawn
as '␣'; W opens the logit lens, whose rows and cells are the engine's."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from engine.trace.logit_lens import logit_lens  # noqa: E402
from tests.tui.test_tmux_layout import SizedTmux  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))
from gpt2_folders import make_folder  # noqa: E402

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux)")]

TREE = 28  # the layer tree's columns at 80 wide; the view's text starts 2 columns further
SHADE = "[ ▁▂▃▄▅▆▇█×]"


def _command(folder: Path) -> str:
    """The installed console script; the same entry point through python when it is absent."""
    exe = shutil.which("tui-tfs")
    if exe:
        probe = subprocess.run([exe, "explore", "--help"], capture_output=True, text=True,
                               timeout=60)
        if probe.returncode == 0:
            return f"{shlex.quote(exe)} explore {shlex.quote(str(folder))}"
    code = f"from tui_tfs.app import run_explorer; run_explorer(None, {str(folder)!r}, None)"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _view(screen: str) -> list[str]:
    """The view panel's lines, the tree and the borders left out."""
    return [line[TREE + 2:].rstrip(" │") for line in screen.splitlines()]


def test_gpt2_folder_in_tmux_bpe_labels_and_the_logit_lens(tmp_path):
    from tui_tfs.session import Session

    folder = make_folder(tmp_path / "tiny-gpt2")
    session = Session.open(str(folder))  # what the app opens on: the same example and seed
    tokens = session.trace.tgt_tokens[0]
    assert any(t.startswith("␣") for t in tokens[:5])
    tmux = SizedTmux()
    try:
        tmux.start_in_terminal(_command(folder), 80, 23)
        assert tmux.run("display", "-p", "#{pane_width}x#{pane_height}").strip() == "80x23"
        tmux.settled(f"forward 1/{len(session.trace)}")
        tmux.keys("a")
        screen = tmux.settled("queries down, keys across")
        view = _view(screen)
        rows = [m.group(1) for line in view if (m := re.match(rf"\s*(\S+) {SHADE}{{5}} ", line))]
        assert rows and rows == tokens[:len(rows)], screen  # queries down: BPE pieces
        assert any(r.startswith("␣") for r in rows) and "Ġ" not in screen, screen
        header = next(line for line in view if line.split()[:3] == tokens[:3])
        assert header.split() == tokens[:len(header.split())], screen  # keys across

        tmux.keys("W")
        screen = tmux.settled("each block's stream")
        assert "logit lens" in screen and len(screen.rstrip("\n").split("\n")) == 23
        view = [line.strip() for line in _view(screen)]
        lens = logit_lens(session.model, session.trace)
        reads = next(line for line in view if line.startswith("reads")).split()[1:]
        assert reads and reads == tokens[:len(reads)], screen
        label = session.scenario.tokenizer.label
        for name, row in (("embed", 0), ("L1", 1), ("L2 out", 2)):
            line = next(line for line in view if line.startswith(name + " "))
            top = label(int(lens.top_ids[row, 0, 0]))
            assert line[len(name):].split()[0] == top, screen
            assert re.match(rf"\s+{re.escape(top)} [<>\d.]+% #{lens.target_rank[row, 0]}\b",
                            line[len(name):]), screen
        tmux.keys(">")
        screen = tmux.settled(f"of {lens.positions}")
        after = next(line.strip() for line in _view(screen) if line.strip().startswith("reads"))
        assert after.split()[1] == tokens[len(reads)], screen  # the next page of positions
        tmux.keys("Escape")
        tmux.settled("queries down, keys across")  # back to the attention map
        tmux.keys("q")
        tmux.wait_for("app-exit-status 0")
    finally:
        tmux.close()
