"""Damaged checkpoints through `eval`, `generate` and `train --resume`: every one ends in exit 0
or exit 2 with one short line naming the file; never a traceback, and --resume never trains
on (or overwrites) what it cannot trust."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_tfs.cli import main

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
steps = 3
"""


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, Path]:
    """(scenario file, checkpoint trained 3 steps on it), made once."""
    folder = tmp_path_factory.mktemp("damaged")
    scenario = folder / "tiny.toml"
    scenario.write_text(TINY, encoding="utf-8")
    out = folder / "tiny.safetensors"
    assert main(["train", str(scenario), "--out", str(out)]) == 0
    return scenario, out


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with safetensors.safe_open(str(path), framework="np") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())


def write(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))


def config_with(meta: dict[str, str], **changes) -> str:
    return json.dumps({**json.loads(meta["tui_tfs.config"]), **changes})


def first_weight(tensors) -> str:
    return next(k for k in tensors if not k.startswith("optimizer."))


def set_weight(tensors, meta, make):
    name = first_weight(tensors)
    tensors[name] = make(tensors[name])


DAMAGES = {
    "tokenizer is a list": lambda t, m: m.update({"scenario.tokenizer": "[]"}),
    "tokenizer kind is a number": lambda t, m: m.update({"scenario.tokenizer": '{"kind": 5}'}),
    "tokenizer of another size": lambda t, m: m.update({"scenario.tokenizer": json.dumps(
        {"kind": "char", "vocab": ["<pad>", "<s>", "</s>", "0"]})}),
    "examples are a number": lambda t, m: m.update({"scenario.examples": "5"}),
    "config is a list": lambda t, m: m.update({"tui_tfs.config": "[1, 2]"}),
    "config nested 100000 deep": lambda t, m: m.update({"tui_tfs.config": "[" * 100000}),
    "model seed negative": lambda t, m: m.update({"tui_tfs.config": config_with(m, seed=-1)}),
    "model seed a string": lambda t, m: m.update({"tui_tfs.config": config_with(m, seed="3")}),
    "model seed a float": lambda t, m: m.update({"tui_tfs.config": config_with(m, seed=1.5)}),
    "model kind unknown": lambda t, m: m.update({"tui_tfs.config": config_with(m, kind="gpt")}),
    "huge d_model": lambda t, m: m.update({"tui_tfs.config": config_with(
        m, d_model=10**12, n_heads=1)}),
    "huge max_len": lambda t, m: m.update({"tui_tfs.config": config_with(m, max_len=10**10)}),
    "layout unknown": lambda t, m: m.update({"scenario.layout": "sideways"}),
    "layout of the other model kind": lambda t, m: m.update({"scenario.layout": "prompted"}),
    "step negative": lambda t, m: m.update({"tui_tfs.step": "-3"}),
    "step not a number": lambda t, m: m.update({"tui_tfs.step": "three"}),
    "NaN weights": lambda t, m: set_weight(t, m, lambda w: np.full_like(w, np.nan)),
    "Inf weights": lambda t, m: set_weight(t, m, lambda w: np.full_like(w, np.inf)),
    "integer weights": lambda t, m: set_weight(t, m, lambda w: w.astype(np.int32)),
    "bool weights": lambda t, m: set_weight(t, m, lambda w: w > 0),
    "complex weights": lambda t, m: set_weight(t, m, lambda w: w.astype(np.complex64)),
    "float16 weights": lambda t, m: set_weight(t, m, lambda w: w.astype(np.float16)),
    "a weight missing": lambda t, m: t.pop(first_weight(t)),
    "a weight reshaped": lambda t, m: set_weight(t, m, lambda w: w.reshape(1, -1)),
    "NaN optimizer moments": lambda t, m: t.update(
        {"optimizer.exp_avg": np.full_like(t["optimizer.exp_avg"], np.nan)}),
    "moments of the wrong size": lambda t, m: t.update(
        {"optimizer.exp_avg": t["optimizer.exp_avg"][:-1]}),
    "trainer step a float": lambda t, m: t.update({"optimizer.trainer.step": np.array(2.5)}),
    "trainer rng the wrong shape": lambda t, m: t.update(
        {"optimizer.trainer.rng": np.zeros(5, dtype=np.uint64)}),
    "trainer rng complex": lambda t, m: t.update(
        {"optimizer.trainer.rng": np.zeros(6, dtype=np.complex64)}),
    "trainer state missing": lambda t, m: t.pop("optimizer.trainer.rng"),
    "stored lr Infinity": lambda t, m: m.update({"scenario.train_config": json.dumps(
        {**json.loads(m["scenario.train_config"]), "lr": float("inf")})}),
    "stored train config a string": lambda t, m: m.update({"scenario.train_config": '"fast"'}),
    "stored train config unknown key": lambda t, m: m.update({"scenario.train_config": json.dumps(
        {**json.loads(m["scenario.train_config"]), "x" * 100000: 1})}),
}
# what eval/generate do not need: they may run (exit 0); --resume must refuse them all
TRAINING_ONLY = {"NaN optimizer moments", "moments of the wrong size", "trainer step a float",
                 "trainer rng the wrong shape", "trainer state missing", "stored lr Infinity",
                 "stored train config a string", "stored train config unknown key"}


def run(capsys, command: str, scenario: Path, checkpoint: Path) -> tuple[int, str]:
    args = {"eval": ["eval", str(checkpoint), "--n", "2"],
            "generate": ["generate", str(checkpoint), "--max-tokens", "4"],
            "resume": ["train", str(scenario), "--out", str(checkpoint), "--resume",
                       "--steps", "5"]}[command]
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert code in (0, 2) and len(lines) <= 1 and len(err) < 1000, err[:500]
    if code == 2:
        assert lines[0].startswith(f"tui-tfs {args[0]}: ")
    return code, err


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("command", ["eval", "generate", "resume"])
def test_a_damaged_checkpoint_is_one_message(capsys, tmp_path, original, damage, command):
    scenario, good = original
    tensors, meta = read(good)
    DAMAGES[damage](tensors, meta)
    path = tmp_path / "damaged.safetensors"
    write(path, tensors, meta)
    before = path.read_bytes()
    code, err = run(capsys, command, scenario, path)
    if command == "resume" or damage not in TRAINING_ONLY:
        assert code == 2, f"{damage} was not refused by {command}"
        assert str(path) in err  # the message names the file
    assert path.read_bytes() == before  # nothing trained on it, nothing overwritten


def json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
        | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                       max_size=4),
        max_leaves=8)


ARRAYS = st.sampled_from(["float32", "float64", "float16", "int64", "uint64", "bool",
                          "complex64"]).flatmap(lambda dtype: st.tuples(
                              st.just(dtype), st.lists(st.integers(0, 5), max_size=3),
                              st.sampled_from([0.0, 1.0, -1e30, np.nan, np.inf])))


@settings(max_examples=600, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from(["eval", "generate", "resume"]),
       where=st.sampled_from(["metadata", "config field", "tensor"]),
       key=st.sampled_from(["tui_tfs.config", "tui_tfs.step", "scenario.tokenizer",
                            "scenario.layout", "scenario.examples", "scenario.train_config",
                            "scenario.source", "tui_tfs.format"]),
       field=st.sampled_from(["seed", "d_model", "n_heads", "vocab_size", "max_len", "dropout",
                              "ln_eps", "init_std", "pad_id", "dtype", "breaks", "norm",
                              "tie_embeddings", "kind", "unknown"]),
       tensor=st.integers(0, 10**6), value=json_values(), array=ARRAYS)
def test_property_damaged_checkpoints_never_crash(capsys, tmp_path_factory, original, command,
                                                  where, key, field, tensor, value, array):
    scenario, good = original
    tensors, meta = read(good)
    if where == "metadata":
        meta[key] = json.dumps(value)
    elif where == "config field":
        meta["tui_tfs.config"] = config_with(meta, **{field: value})
    else:
        name = sorted(tensors)[tensor % len(tensors)]
        dtype, shape, fill = array
        with np.errstate(invalid="ignore", over="ignore"):
            tensors[name] = np.full(shape, fill).astype(dtype)
    path = tmp_path_factory.mktemp("case") / "damaged.safetensors"
    write(path, tensors, meta)
    before = path.read_bytes()
    code, _ = run(capsys, command, scenario, path)
    if command == "resume" and code == 0:  # it trusted the file: then it must have been sound
        from engine.training.checkpoint import load_checkpoint

        assert all(np.isfinite(v).all() for v in load_checkpoint(path).state_dict.values())
    elif code == 2:
        assert path.read_bytes() == before


def test_nan_weights_can_be_opened_on_purpose_with_the_names_listed(tmp_path, original):
    """What the explorer calls: the weights load, and the ones holding NaN are named."""
    from engine.training.checkpoint import CheckpointError, load_checkpoint
    from scenarios.checkpoints import open_checkpoint

    tensors, meta = read(original[1])
    name = first_weight(tensors)
    tensors[name] = np.full_like(tensors[name], np.nan)
    path = tmp_path / "nan.safetensors"
    write(path, tensors, meta)
    with pytest.raises(CheckpointError, match="hold NaN or Inf"):
        open_checkpoint(path)
    assert load_checkpoint(path, allow_nonfinite=True).nonfinite == [name]
    trained = open_checkpoint(path, allow_nonfinite=True)
    assert trained.nonfinite == [name] and np.isnan(trained.model.state_dict()[name]).all()
