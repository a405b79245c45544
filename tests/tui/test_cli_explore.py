"""The explore command's edges, run as the real command (a subprocess, stdout a pipe): a bad
source is a message on stderr and a non-zero exit, never the picker; a pipe is refused before
any escape code is written; --ascii works without a command; `list` ends no line in spaces."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def tui_tfs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`tui-tfs ARGS` with stdin, stdout and stderr all pipes (no terminal anywhere)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tui_tfs.cli", *args], cwd=cwd or ROOT,
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_explore_of_a_missing_source_is_an_error_not_the_picker():
    result = tui_tfs("explore", "nosuch")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "tui-tfs explore: no scenario named 'nosuch'" in result.stderr
    assert "\x1b[" not in result.stderr  # no screen was drawn


def test_explore_of_a_file_that_is_neither_says_what_it_expects(tmp_path):
    picture = tmp_path / "weights.bin"
    picture.write_bytes(b"\xe8\x00\x01binary")
    result = tui_tfs("explore", str(picture))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith(f"tui-tfs explore: {picture}: neither a scenario file nor a checkpoint")
    assert "scenario file (.toml" in line and "checkpoint saved by `tui-tfs train`" in line
    assert "utf-8" not in line and "\n" not in line


def test_explore_into_a_pipe_says_so_instead_of_drawing():
    for args in (["explore"], ["explore", "reverse"], []):
        result = tui_tfs(*args)
        assert result.returncode == 2, args
        assert "stdout is not a terminal" in result.stderr, (args, result.stderr)
        assert "\x1b" not in result.stdout + result.stderr, args


def test_ascii_works_without_a_command():
    result = tui_tfs("--ascii")
    assert "unrecognized arguments" not in result.stderr, result.stderr
    assert "tui-tfs explore: stdout is not a terminal" in result.stderr  # it reached the explorer
    assert "--ascii" in tui_tfs("--help").stdout


def test_explore_a_checkpoint_checks_it_before_the_screen(tmp_path):
    """A checkpoint opens (then the pipe is refused, as for any source); one without our
    metadata is named with the fix."""
    assert tui_tfs("train", "reverse", "--steps", "3", cwd=tmp_path).returncode == 0
    result = tui_tfs("explore", "checkpoints/reverse.safetensors", cwd=tmp_path)
    assert result.returncode == 2 and "stdout is not a terminal" in result.stderr, result.stderr
    import numpy as np
    import safetensors.numpy

    foreign = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(2, np.float32)}, str(foreign))
    result = tui_tfs("explore", str(foreign))
    assert result.returncode == 2
    assert f"{foreign}: a safetensors file, but not a tui-tfs checkpoint" in result.stderr


def test_list_has_no_trailing_spaces():
    result = tui_tfs("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) >= 8 and lines[0].startswith("scenario")
    assert [line for line in lines if line != line.rstrip()] == []
