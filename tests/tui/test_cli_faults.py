"""Faults in `tui-tfs train/generate/eval` lose nothing: a diverged run stops without saving
NaN, a bad --out/--log is refused before the first step, a failed save leaves the previous
checkpoint, kill -9 leaves no temp files once the next save ran, a resumed log has no repeats,
and generate/eval refuse requests they could never finish."""
from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.training.checkpoint import load_checkpoint, remove_stale_temp_files, save_checkpoint
from engine.maths.config import DecoderOnlyConfig
from engine.maths.models import build_model
from tui_tfs.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = """[scenario]
task = "reverse"
[data]
min_len = 2
max_len = 4
train_size = 60
test_size = 5
[model]
d_model = 8
n_heads = 2
d_ff = 16
n_layers = 1
[train]
batch_size = 4
steps = 4
"""


def scenario_file(folder: Path, extra: str = "", name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(TINY.replace("[train]\n", "[train]\n" + extra), encoding="utf-8")
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def saving(folder: Path, known: set[str]) -> bool:
    """A temp file not in `known` has bytes in it: a save is writing (the probe of the output
    folder before training is empty)."""
    for name in set(temp_files(folder)) - known:
        try:
            if (folder / name).stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
    return False


# -- training that goes wrong -----------------------------------------------------------------
def test_nan_training_exits_non_zero_and_keeps_the_last_finite_checkpoint(capsys, tmp_path):
    good = scenario_file(tmp_path, "lr = 0.001\n")
    out = tmp_path / "run.safetensors"
    assert run(capsys, "train", good, "--out", out)[0] == 0
    before = out.read_bytes()
    scenario_file(tmp_path, "lr = 1e30\n")  # the same file, now diverging
    code, _, err = run(capsys, "train", good, "--out", out, "--steps", 50, "--checkpoint-every", 1000)
    line = one_line(err)
    assert code == 3 and "diverged at step" in line and "lower the learning rate" in line
    assert out.read_bytes() == before  # the good checkpoint was not overwritten
    code, _, err = run(capsys, "train", good, "--out", out, "--steps", 50, "--checkpoint-every", 1)
    line = one_line(err)
    assert code == 3
    step = int(line.split("diverged at step ")[1].split(":")[0])
    saved = load_checkpoint(out)  # refuses NaN weights: loading is the proof they are finite
    assert saved.step == step - 1 and f"still holds step {step - 1}" in line
    assert all(np.isfinite(v).all() for v in saved.state_dict.values())
    assert all(np.isfinite(v).all() for v in saved.optimizer_state.values() if v.dtype.kind == "f")
    assert temp_files(tmp_path) == []


# -- where the output goes ----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["dot", "directory", "device", "symlink", "under_a_file"])
def test_an_out_that_is_not_a_regular_file_is_refused_before_training(capsys, tmp_path, where,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "real.safetensors"
    target.write_bytes(b"not touched")
    (tmp_path / "link.safetensors").symlink_to(target)
    out = {"dot": ".", "directory": str(tmp_path), "device": "/dev/null",
           "symlink": "link.safetensors", "under_a_file": "real.safetensors/x.safetensors"}[where]
    code, stdout, err = run(capsys, "train", "reverse", "--out", out, "--steps", 2)
    line = one_line(err)
    assert code == 2 and line.startswith("tui-tfs train: --out")
    assert "step" not in stdout  # refused before the first step, not at the first checkpoint
    assert target.read_bytes() == b"not touched" and (tmp_path / "link.safetensors").is_symlink()
    assert Path("/dev/null").is_char_device()


def test_a_failed_save_says_the_previous_checkpoint_is_intact(capsys, tmp_path, monkeypatch):
    import engine.training.checkpoint as checkpoint_module

    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) > 1:  # the first save works, the disk is full at the second
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.os, "fsync", full_disk)
    out = tmp_path / "run.safetensors"
    code, _, err = run(capsys, "train", scenario_file(tmp_path), "--out", out,
                       "--checkpoint-every", 2)
    line = one_line(err)
    assert code == 2 and "No space left on device" in line
    assert "the previous checkpoint (step 2) is intact" in line
    assert load_checkpoint(out).step == 2 and temp_files(tmp_path) == []


def test_stale_temp_files_of_our_naming_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "m.safetensors"
    dead = tmp_path / ".m.safetensors.999999999.abcd1234.tmp"  # no such process
    old_style = tmp_path / ".m.safetensors.x7y8z9ab.tmp"  # named before pids were added
    alive = tmp_path / f".m.safetensors.{os.getppid()}.abcd1234.tmp"  # a save still running
    other = tmp_path / ".other.safetensors.999999999.abcd1234.tmp"  # another file's: not ours
    for p in (dead, old_style, alive, other):
        p.write_bytes(b"x" * 100)
    save_checkpoint(path, build_model(DecoderOnlyConfig(d_model=8, n_heads=2, d_ff=8, n_layers=1)))
    assert not dead.exists() and not old_style.exists()
    assert alive.exists() and other.exists()
    assert remove_stale_temp_files(path) == []


@pytest.mark.timeout(240)
def test_kill_9_during_saves_leaves_no_temp_files_once_the_next_save_ran(tmp_path):
    """A checkpoint (~18 MB) after every step; each run is killed the moment a temp file of a
    save is seen, so the kill lands mid-save; the next run's first save removes what is left."""
    scenario = tmp_path / "big.toml"
    scenario.write_text(TINY.replace("d_model = 8\nn_heads = 2\nd_ff = 16\nn_layers = 1",
                                     "d_model = 128\nn_heads = 2\nd_ff = 1024\nn_layers = 2")
                        .replace("batch_size = 4\nsteps = 4", "batch_size = 1\nsteps = 100000"),
                        encoding="utf-8")
    out = tmp_path / "run.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tui_tfs.cli", "train", str(scenario), "--out", str(out),
               "--checkpoint-every", "1", "--eval-every", "100000"]
    killed_mid_save = 0
    for _ in range(6):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, cwd=tmp_path)
        stale = set(temp_files(tmp_path))  # left by the previous kill
        deadline = time.monotonic() + 60
        while not saving(tmp_path, stale):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no save within a minute"
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        left = set(temp_files(tmp_path))
        killed_mid_save += bool(left - stale)
        assert not stale & left, "a killed save's temp file outlived the next save"
        if out.exists():
            load_checkpoint(out)  # never a half-written checkpoint under the real name
    assert killed_mid_save >= 3, f"only {killed_mid_save} of 6 kills landed in a save"
    proc = subprocess.run(command[:5] + ["--out", str(out), "--steps", "1"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert temp_files(tmp_path) == []


# -- the CSV log --------------------------------------------------------------------------------
def test_log_into_a_missing_folder_is_made_and_onto_a_directory_is_refused(capsys, tmp_path):
    log = tmp_path / "new" / "folder" / "log.csv"
    out = tmp_path / "run.safetensors"
    assert run(capsys, "train", scenario_file(tmp_path), "--out", out, "--log", log)[0] == 0
    assert len(log.read_text().splitlines()) == 5  # the header and 4 steps
    code, stdout, err = run(capsys, "train", scenario_file(tmp_path), "--out", out,
                            "--log", tmp_path)
    assert code == 2 and "--log" in one_line(err) and "is not a regular file" in err
    assert "step" not in stdout


def test_resume_after_a_crash_does_not_repeat_log_rows(capsys, tmp_path):
    scenario = scenario_file(tmp_path, "")
    out, log = tmp_path / "run.safetensors", tmp_path / "log.csv"
    assert run(capsys, "train", scenario, "--out", out, "--log", log, "--steps", 5)[0] == 0
    at_five = tmp_path / "five.safetensors"
    shutil.copy(out, at_five)
    assert run(capsys, "train", scenario, "--out", out, "--log", log, "--steps", 10,
               "--resume")[0] == 0
    shutil.copy(at_five, out)  # a crash after step 10's rows, before its checkpoint
    assert run(capsys, "train", scenario, "--out", out, "--log", log, "--steps", 10,
               "--resume")[0] == 0
    with log.open(encoding="utf-8") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, 11))


# -- generate and eval ----------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["generate", "x.safetensors", "--temperature", "1e-310"], "--temperature: must be from 0.01"),
    (["generate", "x.safetensors", "--temperature", "nan"], "--temperature: must be a finite"),
    (["generate", "x.safetensors", "--max-tokens", "1000000000"], "--max-tokens: must be from 1 to 10,000"),
    (["eval", "x.safetensors", "--n", "1000000000"], "--n: must be from 1 to 10,000"),
    (["train", "reverse", "--threads", "100000"], "--threads: must be from 1 to 64"),
    (["train", "reverse", "--steps", "1" * 50], "--steps: must be from 1 to"),
    (["train", "reverse", "--steps", "1" * 5000], "--steps: must be a whole number"),
])
def test_requests_that_could_never_finish_are_refused(capsys, args, words):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and words in err and "Traceback" not in err and len(err) < 1000
