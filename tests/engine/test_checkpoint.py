"""Checkpoints: round trip, atomic writes, and one clear CheckpointError per kind of bad file."""
import json
import os

import numpy as np
import pytest
import safetensors.numpy

from engine.training.checkpoint import (CONFIG_KEY, FORMAT_KEY, CheckpointError, load_checkpoint, load_model,
                               save_checkpoint)
from engine.maths.config import DecoderOnlyConfig, EncoderDecoderConfig
from engine.maths.models import build_model
from engine.maths.optim import Adam


def small_model(kind="decoder_only", seed=3):
    cls = DecoderOnlyConfig if kind == "decoder_only" else EncoderDecoderConfig
    return build_model(cls(vocab_size=11, d_model=8, n_heads=2, d_ff=16, n_layers=1, max_len=8,
                           seed=seed, tie_embeddings=(kind == "encoder_decoder")))


@pytest.mark.parametrize("kind", ["decoder_only", "encoder_decoder"])
def test_round_trip_restores_config_weights_state_and_metadata(tmp_path, kind):
    model = small_model(kind)
    model.packed.data += np.linspace(0, 1, model.packed.data.size, dtype=model.packed.data.dtype)
    opt = Adam(model.packed, lr=0.01)
    model.packed.grad[...] = 0.5
    opt.step()
    path = save_checkpoint(tmp_path / "m.safetensors", model, extra_metadata={"scenario": "copy"},
                           optimizer_state=opt.state_dict(), step=42)

    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config
    assert ckpt.step == 42
    assert ckpt.metadata == {"scenario": "copy"}
    assert set(ckpt.state_dict) == set(model.state_dict())
    for name, array in model.state_dict().items():
        assert np.array_equal(ckpt.state_dict[name], array) and ckpt.state_dict[name].dtype == array.dtype
    assert set(ckpt.optimizer_state) == {"step", "exp_avg", "exp_avg_sq"}
    assert np.array_equal(ckpt.optimizer_state["exp_avg"], opt.exp_avg)
    assert int(ckpt.optimizer_state["step"]) == 1


def test_load_model_rebuilds_an_identical_model(tmp_path):
    model = small_model(seed=5)
    model.packed.data *= 1.5  # differs from a fresh init with the same seed
    save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    model.eval(), loaded.eval()
    assert np.array_equal(loaded.forward(ids), model.forward(ids))
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.optimizer_state is None and ckpt.step is None and ckpt.metadata == {}


def test_atomic_write_leaves_only_the_checkpoint(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "m.safetensors", model, step=1)
    save_checkpoint(tmp_path / "m.safetensors", model, step=2)  # overwrite in place
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert load_checkpoint(tmp_path / "m.safetensors").step == 2


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    model = small_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model, step=1)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, step=2)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert load_checkpoint(path).step == 1


def test_bad_extra_metadata_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="reserved prefix"):
        save_checkpoint(tmp_path / "m.safetensors", small_model(), extra_metadata={"tui_tfs.x": "1"})
    with pytest.raises(ValueError, match="str to str"):
        save_checkpoint(tmp_path / "m.safetensors", small_model(), extra_metadata={"n": 3})
    assert os.listdir(tmp_path) == []


# -- each kind of bad file -----------------------------------------------------------------------
def good_bytes(model=None) -> bytes:
    model = model or small_model()
    tensors = model.state_dict()
    return safetensors.numpy.save(tensors, metadata={FORMAT_KEY: "1",
                                                     CONFIG_KEY: json.dumps(model.config.to_dict())})


def write(tmp_path, payload: bytes):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.safetensors: no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)


def test_not_safetensors(tmp_path):
    path = write(tmp_path, b"this is a text file, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: not a readable safetensors file"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    payload = good_bytes()
    path = write(tmp_path, payload[: len(payload) - 10])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_empty_file(tmp_path):
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(write(tmp_path, b""))


def test_safetensors_without_our_marker(tmp_path):
    path = write(tmp_path, safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(CheckpointError, match="not a tui-tfs checkpoint"):
        load_checkpoint(path)


def test_config_not_json(tmp_path):
    path = write(tmp_path, safetensors.numpy.save({"w": np.zeros(3)}, metadata={FORMAT_KEY: "1",
                                                                                CONFIG_KEY: "{oops"}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_config_missing(tmp_path):
    path = write(tmp_path, safetensors.numpy.save({"w": np.zeros(3)}, metadata={FORMAT_KEY: "1"}))
    with pytest.raises(CheckpointError, match=f"no '{CONFIG_KEY}'"):
        load_checkpoint(path)


@pytest.mark.parametrize("change, message", [
    ({"n_heads": 3}, "divisible by n_heads"),
    ({"kind": "rnn"}, "kind must be one of"),
    ({"colour": "red"}, "unknown config field"),
])
def test_invalid_config(tmp_path, change, message):
    config = {**small_model().config.to_dict(), **change}
    path = write(tmp_path, safetensors.numpy.save({"w": np.zeros(3)}, metadata={
        FORMAT_KEY: "1", CONFIG_KEY: json.dumps(config)}))
    with pytest.raises(CheckpointError, match=f"saved model config is invalid.*{message}"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(tmp_path):
    model = small_model()
    tensors = model.state_dict()
    tensors["renamed"] = tensors.pop("tok_emb.weight")
    meta = {FORMAT_KEY: "1", CONFIG_KEY: json.dumps(model.config.to_dict())}
    path = write(tmp_path, safetensors.numpy.save(tensors, metadata=meta))
    load_checkpoint(path)  # readable on its own: as many numbers as the config describes
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: weights do not fit.*tok_emb\.weight"):
        load_model(path)
    del tensors["renamed"]  # fewer numbers than the config describes: refused before building
    path = write(tmp_path, safetensors.numpy.save(tensors, metadata=meta))
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: it stores [\d,]+ weights but"):
        load_checkpoint(path)
