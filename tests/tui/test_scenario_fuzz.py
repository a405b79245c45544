"""Generated scenario files through the real `tui-tfs train`: every one ends in exit 0, 2 (one
short message) or 3 (diverged: one line, no NaN saved); never a traceback, a hang or an
allocation past the limit. The bulk (1,000 files) runs in-process under an address-space limit
and an alarm; a sample runs as real processes under the same limits."""
from __future__ import annotations

import dataclasses
import os
import random
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.training.checkpoint import load_checkpoint
from engine.maths.config import BreakSwitches, ModelConfig
from engine.training.train_config import TrainConfig
from scenarios.limits import LIMIT_VARIABLE
from scenarios.settings import (AdditionSettings, DigitSettings, PhraseSettings, SentenceSettings,
                                TextSettings)
from scenarios.tasks import TASKS
from tui_tfs.cli import main

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 60  # per file: far above the ~0.3 s a valid one takes, far below a hang
HEADROOM = 3 * 1024**3  # address space each file may add (the scenario limit is set to 1 GiB)
SCENARIO_LIMIT_GIB = "1"


def names(*classes) -> list[str]:
    return sorted({f.name for cls in classes for f in dataclasses.fields(cls)})


DATA_KEYS = names(DigitSettings, PhraseSettings, AdditionSettings, SentenceSettings, TextSettings)
MODEL_KEYS = [k for k in names(ModelConfig) if k not in ("vocab_size", "pad_id", "breaks")]
TRAIN_KEYS = names(TrainConfig)
BREAK_KEYS = names(BreakSwitches)


class Hang(Exception):
    """A file took longer than SECONDS."""


def toml_string(text: str) -> str:
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 or c in '"\\' else c
                      for c in text)
    return f'"{escaped}"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


INTS = st.one_of(st.integers(-3, 70), st.sampled_from([0, 1, 2, 1000, 10**5, 10**9, 10**12,
                                                       2**31, 2**63 - 1, -(2**63)]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, 0.1, 0.5, 0.999, 1.0, 1e-12, 1e30, -1.0]))
SCALARS = st.one_of(INTS, FLOATS, st.booleans(), st.text(max_size=12),
                    st.sampled_from(["none", "relu", "gelu", "pre", "post", "learned", "sinusoidal",
                                     "float64", "sgd", "adamw", "cosine", "inverse_sqrt", ""]))
VALUES = st.one_of(SCALARS, SCALARS, SCALARS, st.lists(SCALARS, max_size=3),
                   st.dictionaries(st.text(max_size=6), SCALARS, max_size=2))


def floats_between(low: float, high: float):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


# values that often make a valid file: so that many files train, diverge or barely fail
PLAUSIBLE = {
    "min_len": st.integers(1, 6), "max_len": st.integers(2, 12), "train_size": st.integers(1, 80),
    "test_size": st.integers(1, 8), "seed": st.integers(0, 10**6), "digits": st.integers(1, 3),
    "block_size": st.integers(2, 24), "held_out_fraction": floats_between(0.05, 0.45),
    "text_file": st.just(""),
    "d_model": st.sampled_from([8, 16, 24]), "n_heads": st.sampled_from([1, 2, 4, 3]),
    "d_ff": st.sampled_from([8, 32]), "n_layers": st.integers(1, 2),
    "dropout": floats_between(0, 0.6), "activation": st.sampled_from(["relu", "gelu"]),
    "norm": st.sampled_from(["pre", "post"]), "positional": st.sampled_from(["sinusoidal", "learned"]),
    "scale_embedding": st.booleans(), "tie_embeddings": st.booleans(),
    "ln_eps": st.sampled_from([1e-5, 1e-2, 1e3]), "init_std": st.sampled_from([0.02, 1.0, 1e3]),
    "dtype": st.sampled_from(["float32", "float64"]),
    "steps": st.integers(1, 20), "batch_size": st.integers(1, 8),
    "optimizer": st.sampled_from(["sgd", "adam", "adamw"]),
    "lr": st.sampled_from([1e-3, 0.1, 10.0, 1e10, 1e30, 3e38]),
    "betas": st.lists(floats_between(0, 0.999), min_size=2, max_size=2),
    "eps": st.sampled_from([1e-9, 1e-3, 1e30]), "weight_decay": st.sampled_from([0.0, 0.1, 1e20]),
    "momentum": floats_between(0, 0.99),
    "schedule": st.sampled_from(["constant", "cosine", "inverse_sqrt"]),
    "warmup_steps": st.integers(0, 3), "min_lr": st.sampled_from([0.0, 1e-4]),
    "clip_norm": st.sampled_from(["none", 1.0, 1e-6]), "label_smoothing": floats_between(0, 0.9),
    "eval_every": st.integers(0, 2), "shards": st.integers(1, 2),
}


def section(keys: list[str]):
    known = st.sampled_from(keys)

    def value_for(key):
        plausible = PLAUSIBLE.get(key)
        if plausible is None:
            return VALUES
        return st.tuples(st.integers(0, 9), plausible, VALUES).map(
            lambda die: die[1] if die[0] < 8 else die[2])

    pair = st.tuples(st.integers(0, 9), known, st.text(min_size=1, max_size=8)).flatmap(
        lambda die: st.tuples(st.just(die[1] if die[0] else die[2]),
                              value_for(die[1] if die[0] else die[2])))
    return st.lists(pair, max_size=3).map(dict)


@st.composite
def scenario_files(draw) -> str:
    die = random.Random(draw(st.integers(0, 2**32 - 1)))  # fair: hypothesis favours 0 and ends

    def chance(percent: int) -> bool:
        return die.random() * 100 < percent

    task = draw(st.sampled_from(list(TASKS))) if chance(90) else draw(SCALARS)
    head = {"task": task}
    if chance(25):
        head.update(draw(st.dictionaries(st.sampled_from(
            ["name", "summary", "description", "examples", "memory_limit_gib", "other"]),
            VALUES, max_size=2)))
    # small data unless the file says otherwise, so a valid file trains in a fraction of a second
    task_keys = ([f.name for f in dataclasses.fields(TASKS[task].settings_type)]
                 if isinstance(task, str) and task in TASKS and chance(80) else DATA_KEYS)
    sizes = {"train_size": 60, "test_size": 5} if "train_size" in task_keys else {}
    data = {**sizes, **draw(section(task_keys))}
    model = {"d_model": 16, "n_heads": 2, "d_ff": 32, "n_layers": 1, **draw(section(MODEL_KEYS))}
    if chance(20):
        model["breaks"] = draw(st.dictionaries(st.sampled_from(BREAK_KEYS + ["other"]),
                                               VALUES, max_size=2))
    train = {"batch_size": 4, **draw(section(TRAIN_KEYS))}
    lines = [f"[scenario]"] + [f"{toml_string(k)} = {toml_value(v)}" for k, v in head.items()]
    for name, table in (("data", data), ("model", model), ("train", train)):
        lines.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, dict) and name == "model" and key == "breaks":
                lines.append(f"breaks = {toml_value(value)}")
            else:
                lines.append(f"{toml_string(key)} = {toml_value(value)}")
    oddity = draw(st.sampled_from(["deep", "huge key", "bad toml", "section"])) if chance(8) else ""
    if oddity == "deep":
        lines.append("deep = " + "[" * 1200 + "]" * 1200)
    elif oddity == "huge key":
        lines.append("x" * 200_000 + " = 1")
    elif oddity == "bad toml":
        lines.append("= = =")
    elif oddity == "section":
        lines.append("[elsewhere]\na = 1")
    return "\n".join(lines) + "\n"


@contextmanager
def limits():
    """An alarm after SECONDS and an address-space cap of the current size + HEADROOM."""
    def alarm(signum, frame):
        raise Hang(f"still running after {SECONDS} s")

    with open("/proc/self/statm") as handle:
        size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    previous = signal.signal(signal.SIGALRM, alarm)
    cap = size + HEADROOM if hard == resource.RLIM_INFINITY else min(size + HEADROOM, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous)


def check_outcome(code: int, out: str, err: str, checkpoint: Path) -> None:
    event(f"exit {code}")  # --hypothesis-show-statistics: how many trained, how many refused
    assert "Traceback" not in out + err, err[-2000:]
    assert code in (0, 2, 3), (code, err[-2000:])
    if code == 0:
        saved = load_checkpoint(checkpoint)  # refuses NaN/Inf weights
        assert all(np.isfinite(v).all() for v in saved.state_dict.values())
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 800, err[:1000]
    if code == 3:
        assert "diverged at step" in lines[0]
        if checkpoint.exists():
            load_checkpoint(checkpoint)


def train_args(path: Path, out: Path) -> list[str]:
    return ["train", str(path), "--steps", "2", "--out", str(out), "--eval-every", "2"]


@pytest.mark.timeout(1800)
@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(text=scenario_files())
def test_property_generated_scenario_files_end_cleanly(capsys, tmp_path_factory, monkeypatch,
                                                       text):
    folder = tmp_path_factory.mktemp("fuzz")
    path, out = folder / "fuzz.toml", folder / "fuzz.safetensors"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(LIMIT_VARIABLE, SCENARIO_LIMIT_GIB)
    with limits():
        try:
            code = main(train_args(path, out))
        except SystemExit as exit:  # argparse: not expected, the flags are fixed
            code = exit.code
    captured = capsys.readouterr()
    check_outcome(code, captured.out, captured.err, out)


def limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (HEADROOM + 1024**3, resource.RLIM_INFINITY))


@pytest.mark.timeout(900)
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(text=scenario_files())
def test_property_generated_scenario_files_as_real_processes(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzzp")
    path, out = folder / "fuzz.toml", folder / "fuzz.safetensors"
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
           LIMIT_VARIABLE: SCENARIO_LIMIT_GIB}
    proc = subprocess.run([sys.executable, "-m", "tui_tfs.cli"] + train_args(path, out),
                          capture_output=True, text=True, env=env, timeout=SECONDS,
                          preexec_fn=limit_child, cwd=folder)
    check_outcome(proc.returncode, proc.stdout, proc.stderr, out)
