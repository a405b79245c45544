"""`python -m engine.bench`: paired timing of the engine against torch, its summary, and its
output (80 columns, a ratio, no traceback when a side fails)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.bench.run import SIDES, pair_order, paired_ratio

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=100)


def test_paired_ratio_is_the_median_of_the_per_pair_ratios():
    # Engine times 1, 4, 9 against torch 1, 2, 3: ratios 1, 2, 3 (the medians of each side,
    # 4 and 2, would also give 2, so the next case tells the two apart).
    summary = paired_ratio([1.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    assert summary["ratios"] == [1.0, 2.0, 3.0]
    assert summary["median"] == 2.0
    assert summary["q1"] == 1.5 and summary["q3"] == 2.5
    # A slow stretch that hits both sides of a pair cancels out of its ratio.
    summary = paired_ratio([1.0, 1.0, 10.0, 10.0, 10.0], [2.0, 2.0, 20.0, 20.0, 20.0])
    assert summary["median"] == 0.5 and summary["q1"] == summary["q3"] == 0.5
    assert paired_ratio([3.0], [2.0])["median"] == 1.5  # one pair: no spread to speak of
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_pairs_alternate_which_side_goes_first():
    orders = [pair_order(i) for i in range(4)]
    assert orders == [SIDES, SIDES[::-1], SIDES, SIDES[::-1]]
    assert set(SIDES) == {"engine", "torch"}


@pytest.mark.timeout(120)
def test_bench_runs_and_fits_80_columns():
    pytest.importorskip("torch")
    done = run_bench("--configs", "tiny", "--steps", "2", "--warmup", "1")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\d+\.\d\dx", done.stdout), done.stdout
    assert "failed" not in done.stdout, done.stdout
    too_long = [line for line in done.stdout.splitlines() if len(line) > 80]
    assert too_long == [], done.stdout
    # and the generation row: batch 1, KV cache, one thread each side
    row = next(line for line in done.stdout.splitlines() if line.startswith("│ small gen"))
    assert re.search(r"\d+\.\d\dx", row), row
    assert re.search(r"small gen: .*tokens/s.*engine [\d,]+, torch [\d,]+",
                     done.stdout.replace("\n", " ")), done.stdout


@pytest.mark.timeout(120)
def test_a_failing_side_is_one_line_and_the_other_is_still_timed(tmp_path):
    # A `torch` that fails to import, ahead of the real one on the path.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = run_bench("--configs", "tiny", "--steps", "2", "--warmup", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "tiny: torch failed: ImportError: no torch here" in done.stdout.splitlines()
    row = next(line for line in done.stdout.splitlines() if line.startswith("│ tiny"))
    assert re.search(r"\d+\.\d\d \(\d+\.\d\d\)", row), row  # the engine's own median (min)
    assert all(len(line) <= 80 for line in done.stdout.splitlines()), done.stdout


@pytest.mark.timeout(120)
def test_record_cost_pairs_recorded_and_unrecorded_steps():
    """`python -m engine.bench.record_cost`: what recording costs, as a paired ratio."""
    done = subprocess.run([sys.executable, "-m", "engine.bench.record_cost", "--config", "tiny",
                           "--steps", "2", "--warmup", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert re.search(r"recorded / unrecorded: \d+\.\d{3}x \(\d+\.\d{3}-\d+\.\d{3}\)", done.stdout)
    assert "tiny, 1 thread(s), 2 alternating pairs" in done.stdout, done.stdout
    assert all(len(line) <= 80 for line in done.stdout.splitlines()), done.stdout
