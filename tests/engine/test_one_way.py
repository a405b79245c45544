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


# -- one eval-mode helper, one evaluation loop -------------------------------------------------
def test_eval_mode_turns_dropout_off_and_restores_every_modules_mode_even_on_error():
    from engine.maths.param import eval_mode

    model = _decoder_only(dropout=0.5)
    first = next(m for m in model.modules() if m is not model)
    first.eval()  # a mix of modes must come back as that mix
    before = [m.training for m in model.modules()]
    ids = np.random.default_rng(1).integers(1, V, size=(2, 6))
    with eval_mode(model) as same:
        assert same is model and not any(m.training for m in model.modules())
        assert np.array_equal(model.forward(ids), model.forward(ids))  # no dropout draws
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == before


def test_one_evaluation_loop_for_the_trainer_and_the_scenarios():
    from engine.maths.loss import CrossEntropyLoss
    from engine.training.evaluation import evaluate
    from scenarios.base import held_out_loss

    rng = np.random.default_rng(2)
    batches = [_lm_batch(rng, rows) for rows in (3, 5)]
    model = _decoder_only(dropout=0.3)
    trainer = Trainer(model, TrainConfig(label_smoothing=0.1), lambda r: _lm_batch(r))
    smoothed = evaluate(model, batches, CrossEntropyLoss(0, 0.1))
    plain = evaluate(model, batches, CrossEntropyLoss(0, 0.0))
    assert trainer.evaluate(batches) == smoothed  # the training loss, label smoothing included
    assert held_out_loss(model, batches) == plain  # the scenarios' metric: plain cross-entropy
    assert smoothed[0] != plain[0] and smoothed[1] == plain[1]
    model.eval()
    trainer.evaluate(batches)
    assert not model.training  # the mode it was in comes back, whichever it was
    loss, accuracy = evaluate(model, [], CrossEntropyLoss(0))
    assert np.isnan(loss) and accuracy == 0.0  # nothing measured is no number, not a perfect 0


# -- one rebuild with a break switch ---------------------------------------------------------------
@pytest.mark.parametrize("build", [_enc_dec, _decoder_only])
def test_with_break_flips_one_switch_and_keeps_the_weights_and_the_mode(build):
    from engine.maths.switches import SWITCHES, with_break

    model = build()
    model.packed.data[...] = np.random.default_rng(4).normal(size=model.packed.data.shape)
    model.eval()
    for name in SWITCHES:
        broken, value = with_break(model, name)
        assert value is True and broken is not model
        assert broken.config.breaks.active() == [name]
        assert broken.config == _with_breaks(model.config, broken.config.breaks)
        assert all(np.array_equal(a, b) for a, b in zip(broken.state_dict().values(),
                                                         model.state_dict().values()))
        assert not broken.training
        back, value = with_break(broken, name)
        assert value is False and back.config == model.config
    with pytest.raises(ValueError, match="no break switch 'no_brakes'"):
        with_break(model, "no_brakes")


def _with_breaks(config, breaks):
    import dataclasses

    return dataclasses.replace(config, breaks=breaks)
