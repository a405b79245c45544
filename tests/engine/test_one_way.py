"""One way to do each thing: one function runs a model on a batch, one evaluation loop, one
eval-mode helper, one rebuild with a break switch."""
import ast
from pathlib import Path

import numpy as np
import pytest

from engine.maths.batch import Batch, model_inputs, run_model
from engine.maths.config import DecoderOnlyConfig, EncoderDecoderConfig
from engine.maths.models import build_model
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
V = 10


def _enc_dec():
    return build_model(EncoderDecoderConfig(vocab_size=V, d_model=16, n_heads=2, d_ff=32,
                                            n_layers=1, max_len=8, seed=3))


def _decoder_only(dropout=0.0):
    return build_model(DecoderOnlyConfig(vocab_size=V, d_model=16, n_heads=2, d_ff=32,
                                         n_layers=1, max_len=8, dropout=dropout, seed=3))


def _lm_batch(rng, rows=4):
    seq = rng.integers(1, V, size=(rows, 6))
    return Batch(src=None, tgt_in=seq[:, :-1], tgt_out=seq[:, 1:])


def test_run_model_feeds_each_kind_what_its_forward_takes():
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(1, V, size=(2, 4)), rng.integers(1, V, size=(2, 5))
    enc_dec = _enc_dec()
    batch = Batch(src=src, tgt_in=tgt, tgt_out=tgt)
    assert np.array_equal(run_model(enc_dec, batch), enc_dec.forward(src, tgt))
    lm = _decoder_only()
    assert np.array_equal(run_model(lm, Batch(None, tgt, tgt)), lm.forward(tgt))
    assert model_inputs(lm, Batch(None, tgt, tgt))[0] is tgt
    with pytest.raises(ValueError, match="needs batch.src"):
        run_model(enc_dec, Batch(None, tgt, tgt))
    with pytest.raises(ValueError, match="batch.src must be None"):
        run_model(lm, batch)
    with pytest.raises(ValueError, match="same shape"):
        run_model(lm, Batch(None, tgt, tgt[:, :-1]))


def _forward_calls_with_a_source(path: Path) -> list[int]:
    """Lines of `path` that call `.forward(<something>.src, ...)`: the choice of arguments
    by the model's kind, which run_model owns."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "forward" and node.args
                and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "src"):
            lines.append(node.lineno)
    return lines


def test_only_run_model_chooses_the_forward_arguments_of_a_batch():
    found = {}
    for package in ("engine", "scenarios", "tui_tfs"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "engine" / "maths" / "batch.py":
                continue
            lines = _forward_calls_with_a_source(path)
            if lines:
                found[str(path.relative_to(ROOT))] = lines
    assert found == {}, f"call engine.maths.batch.run_model instead: {found}"


def test_one_shard_steps_without_data_parallelism_and_gives_the_same_losses():
    config = TrainConfig(steps=3, lr=3e-3, seed=5)

    def draw(rng):
        return _lm_batch(rng)

    single = Trainer(_decoder_only(), config, draw)
    assert single.data_parallel is None  # shards == 1: nothing is split, nothing replicated
    two = Trainer(_decoder_only(), TrainConfig(steps=3, lr=3e-3, seed=5, shards=2), draw)
    assert two.data_parallel is not None
    a, b = [s.loss for s in single.run(3)], [s.loss for s in two.run(3)]
    assert np.allclose(a, b, rtol=1e-5) and a[0] == pytest.approx(b[0], rel=1e-6)
