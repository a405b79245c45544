"""With their default settings, the scenarios really learn their tasks.

Each test trains a default model for its default number of steps with the real command
(`tui-tfs train`, in a subprocess: it runs NumPy on one BLAS thread, which for these small
matrices is as fast as two and does not slow down twenty-fold when the other core is busy),
then measures the checkpoint on the held-out split, which never overlaps training. The wall
time of each run is printed (pytest -rA shows it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenarios.checkpoints import open_checkpoint, scenario_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def train_default(name: str, folder: Path):
    out = folder / f"{name}.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "train", name, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=540)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    trained = open_checkpoint(out)
    scenario = scenario_of(trained)
    assert trained.step == scenario.train_config.steps
    return scenario, trained.model, seconds


@pytest.mark.parametrize("name", ["reverse", "copy", "sort"])
def test_sequence_task_reaches_full_exact_match_on_held_out(name, tmp_path):
    scenario, model, seconds = train_default(name, tmp_path)
    metrics = scenario.evaluate(model, n=len(scenario.data.held_out))
    print(f"{name}: {scenario.train_config.steps} steps in {seconds:.1f} s; {metrics}")
    wrong = [p for p in scenario.predictions(model, len(scenario.data.held_out)) if not p.correct]
    assert metrics["exact_match"] == 1.0, f"{len(wrong)} wrong, e.g. {wrong[:3]}"
    assert metrics["token_accuracy"] == 1.0


def test_tiny_lm_reaches_the_entropy_of_its_language(tmp_path):
    scenario, model, seconds = train_default("tiny-lm", tmp_path)
    metrics = scenario.evaluate(model)
    print(f"tiny-lm: {scenario.train_config.steps} steps in {seconds:.1f} s; {metrics}")
    # The held-out sample is 200 sentences, so its loss scatters by about +-0.01 around the
    # expected value; a model that ignored the animal when choosing the place would sit 0.12
    # above the entropy.
    assert metrics["loss"] < metrics["entropy"] + 0.03
