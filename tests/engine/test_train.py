"""The training loop: determinism, learning a copy task, non-finite steps, exact resume."""
import dataclasses
import math

import numpy as np
import pytest

from engine.training.checkpoint import load_checkpoint, save_checkpoint
from engine.maths.config import ConfigError, DecoderOnlyConfig, EncoderDecoderConfig
from engine.maths.models import build_model
from engine.maths.batch import Batch
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig, train_config_from_dict

PAD, BOS, V, LENGTH = 0, 1, 10, 5


def copy_batch(batch_size=8):
    """Encoder-decoder copy task: the target is the source; lengths vary, the rest is padding."""
    def next_batch(rng: np.random.Generator) -> Batch:
        src = rng.integers(2, V, size=(batch_size, LENGTH))
        lengths = rng.integers(2, LENGTH + 1, size=batch_size)
        src[np.arange(LENGTH)[None, :] >= lengths[:, None]] = PAD
        tgt_in = np.concatenate([np.full((batch_size, 1), BOS), src[:, :-1]], axis=1)  # (B, T)
        return Batch(src=src, tgt_in=tgt_in, tgt_out=src.copy())
    return next_batch


def lm_batch(batch_size=4):
    """Decoder-only: predict the next token of a random sequence that repeats itself."""
    def next_batch(rng: np.random.Generator) -> Batch:
        half = rng.integers(2, V, size=(batch_size, 3))
        seq = np.concatenate([np.full((batch_size, 1), BOS), half, half], axis=1)
        return Batch(src=None, tgt_in=seq[:, :-1], tgt_out=seq[:, 1:])
    return next_batch


def enc_dec(dropout=0.0, seed=0):
    return build_model(EncoderDecoderConfig(vocab_size=V, d_model=32, n_heads=4, d_ff=64, n_layers=2,
                                            max_len=8, dropout=dropout, seed=seed))


def decoder_only(seed=0):
    return build_model(DecoderOnlyConfig(vocab_size=V, d_model=16, n_heads=2, d_ff=32, n_layers=2,
                                         max_len=8, norm="pre", seed=seed))


def losses(trainer, n):
    return [s.loss for s in trainer.run(n)]


def test_same_seeds_give_identical_losses_and_weights():
    config = TrainConfig(steps=6, optimizer="adamw", lr=3e-3, weight_decay=0.01, seed=7)
    a, b = Trainer(enc_dec(dropout=0.1), config, copy_batch()), Trainer(enc_dec(dropout=0.1), config, copy_batch())
    assert losses(a, 6) == losses(b, 6)
    assert np.array_equal(a.model.packed.data, b.model.packed.data)
    other = Trainer(enc_dec(dropout=0.1), TrainConfig(steps=6, seed=8), copy_batch())
    assert losses(other, 1) != losses(Trainer(enc_dec(dropout=0.1), config, copy_batch()), 1)


def test_loss_decreases_on_a_copy_task():
    config = TrainConfig(steps=300, lr=3e-3, schedule="cosine", warmup_steps=20, min_lr=3e-4, seed=1)
    trainer = Trainer(enc_dec(), config, copy_batch(16))
    history = trainer.run(300)
    first, last = history[0].loss, np.mean([s.loss for s in history[-10:]])
    assert first > 1.8  # about log(8) at the start
    assert last < 0.3  # copying is learnt (about 0.04 when this was written)
    assert np.mean([s.accuracy for s in history[-10:]]) > 0.9


def test_decoder_only_trains_and_reports_its_groups():
    trainer = Trainer(decoder_only(), TrainConfig(steps=40, lr=1e-2, seed=2), lm_batch())
    history = trainer.run(40)
    assert np.mean([s.loss for s in history[-5:]]) < history[0].loss
    stats = history[-1]
    assert set(stats.layer_grad_norms) == {"tok_emb", "blocks.0", "blocks.1", "ln_f", "lm_head"}
    assert stats.tokens == 4 * 6 and stats.tokens_per_s > 0 and stats.seconds > 0


def test_layer_grad_norms_partition_the_global_norm():
    trainer = Trainer(enc_dec(), TrainConfig(steps=2, clip_norm=1e-3), copy_batch())
    stats = trainer.step()
    assert {"encoder.tok_emb", "encoder.blocks.0", "encoder.blocks.1", "decoder.tok_emb",
            "decoder.blocks.0", "decoder.blocks.1", "lm_head"} == set(stats.layer_grad_norms)
    total = math.sqrt(sum(n * n for n in stats.layer_grad_norms.values()))
    assert total == pytest.approx(stats.grad_norm, rel=1e-5)
    assert stats.grad_norm > 1e-3  # reported before clipping ...
    assert trainer.model.packed.grad_norm() == pytest.approx(1e-3, rel=1e-3)  # ... clipped after


def test_gradient_groups_are_the_blocks_the_model_declares():
    """The groups come from the facts the model declares (`Facts.block`), not from reading
    parameter names: a block that declares another name is reported under that name."""
    model = decoder_only()
    for module in model.blocks[1].modules():
        module.facts = dataclasses.replace(module.facts, block="second block")
    stats = Trainer(model, TrainConfig(steps=1), lm_batch()).step()
    assert set(stats.layer_grad_norms) == {"tok_emb", "blocks.0", "second block", "ln_f",
                                           "lm_head"}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nonfinite_step_puts_back_the_weights_of_the_last_finite_step(optimizer):
    """lr = 1e30 makes weights of ~1e29 that are finite but give a NaN loss at the next step:
    that step is skipped and the update before it undone, moments and step count included."""
    config = TrainConfig(steps=20, optimizer=optimizer, lr=1e30, clip_norm=None, seed=3)
    trainer = Trainer(enc_dec(), config, copy_batch())
    measured = []  # (weights, optimizer state) before each step: what its loss was measured at
    for _ in range(20):
        measured.append((trainer.model.packed.data.copy(), trainer.optimizer.state_dict()))
        stats = trainer.step()
        if stats.nonfinite:
            break
    assert stats.nonfinite, "a learning rate of 1e30 should blow up within 20 steps"
    assert stats.problem and stats.weights_of_step is not None and stats.weights_of_step < stats.step
    weights, optimizer_state = measured[stats.weights_of_step - 1]
    assert np.array_equal(trainer.model.packed.data, weights)
    for key, value in trainer.optimizer.state_dict().items():
        np.testing.assert_array_equal(value, optimizer_state[key])
    assert np.isfinite(trainer.model.packed.data).all()
    assert np.abs(trainer.model.packed.data).max() < 1e3  # not the ruined ~1e29 weights
    assert trainer.step_count == stats.step  # the step still counts
    again = trainer.step()  # the same weights give a finite loss again
    assert math.isfinite(again.loss)


def test_an_update_that_overflows_the_weights_is_undone():
    """AdamW's decay factor 1 - lr * wd = -1e40 overflows float32: the loss and gradients are
    finite, the update makes Inf/NaN weights; they never stay in the model."""
    config = TrainConfig(steps=5, optimizer="adamw", lr=1e30, weight_decay=1e10)
    trainer = Trainer(enc_dec(), config, copy_batch())
    before = trainer.model.packed.data.copy()
    stats = trainer.step()
    assert math.isfinite(stats.loss) and math.isfinite(stats.grad_norm)
    assert stats.nonfinite and "overflowed (weights" in stats.problem and stats.weights_of_step == 1
    assert np.array_equal(trainer.model.packed.data, before)
    assert trainer.optimizer.step_count == 0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path, optimizer):
    config = TrainConfig(steps=10, optimizer=optimizer, lr=1e-2, momentum=0.9, schedule="cosine",
                         warmup_steps=3, seed=4)
    straight = Trainer(enc_dec(dropout=0.2), config, copy_batch())
    expected = losses(straight, 10)

    first = Trainer(enc_dec(dropout=0.2), config, copy_batch())
    got = losses(first, 5)
    save_checkpoint(tmp_path / "run.safetensors", first.model, optimizer_state=first.state(), step=5)
    ckpt = load_checkpoint(tmp_path / "run.safetensors")
    model = enc_dec(dropout=0.2, seed=99)  # a different init, overwritten by the checkpoint
    model.load_state_dict(ckpt.state_dict)
    resumed = Trainer(model, config, copy_batch())
    resumed.load_state(ckpt.optimizer_state)
    assert resumed.step_count == 5
    got += losses(resumed, 5)

    assert got == expected
    assert np.array_equal(resumed.model.packed.data, straight.model.packed.data)


def test_run_stops_on_callback_false_and_should_stop():
    trainer = Trainer(decoder_only(), TrainConfig(steps=10), lm_batch())
    seen = []
    history = trainer.run(10, callback=lambda s: seen.append(s.step) or s.step < 3)
    assert [s.step for s in history] == seen == [1, 2, 3]
    calls = iter([False, False, True])
    assert len(trainer.run(10, should_stop=lambda: next(calls))) == 2
    assert trainer.step_count == 5


def test_evaluation_every_n_steps_in_eval_mode():
    held_out = [lm_batch()(np.random.default_rng(123))]
    trainer = Trainer(decoder_only(), TrainConfig(steps=4, eval_every=2), lm_batch(),
                      eval_batches=lambda: held_out)
    history = trainer.run(4)
    assert [s.eval_loss is not None for s in history] == [False, True, False, True]
    loss, accuracy = trainer.evaluate(held_out)
    assert loss == pytest.approx(history[-1].eval_loss) and 0 <= accuracy <= 1
    assert trainer.model.training  # back in train mode afterwards


def test_batch_must_fit_the_model_kind():
    with pytest.raises(ValueError, match="needs batch.src"):
        Trainer(enc_dec(), TrainConfig(), lm_batch()).step()
    with pytest.raises(ValueError, match="batch.src must be None"):
        Trainer(decoder_only(), TrainConfig(), copy_batch()).step()


@pytest.mark.parametrize("change, message", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"optimizer": "rmsprop"}, r"optimizer must be one of \['adam', 'adamw', 'sgd'\]"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"betas": (0.9,)}, "betas must be a pair"),
    ({"schedule": "inverse_sqrt"}, "warmup_steps must be >= 1"),
    ({"schedule": "cosine", "warmup_steps": 5000}, "warmup_steps .* must be below steps"),
    ({"clip_norm": -1.0}, "clip_norm must be a positive number"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
    ({"eval_every": -1}, "eval_every must be an integer >= 0"),
    ({"lr": math.inf}, r"lr must be a positive number \(not inf or nan\)"),
    ({"lr": math.nan}, "lr must be a positive number"),
    ({"eps": math.inf}, "eps must be a positive number"),
    ({"weight_decay": math.inf}, "weight_decay must be a number >= 0"),
    ({"clip_norm": math.inf}, "clip_norm must be a positive number"),
    ({"betas": (0.9, math.nan)}, r"betas\[1\] must be in \[0, 1\)"),
    ({"momentum": math.nan}, r"momentum must be in \[0, 1\)"),
    ({"min_lr": math.nan}, "min_lr must be in"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 2**64}, "seed must be below 2"),
    ({"lr": "x" * 10**6}, r"lr must be a positive number .{0,80}$"),
])
def test_train_config_errors_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change).validate()


def test_train_config_round_trips_through_a_dict():
    config = TrainConfig(optimizer="sgd", momentum=0.9, clip_norm=None)
    assert train_config_from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown training field"):
        train_config_from_dict({"learning_rate": 0.1})


def test_set_lr_changes_the_peak_and_keeps_the_schedule_shape():
    from engine.maths.schedule import build_schedule

    config = TrainConfig(steps=100, lr=1e-3, schedule="cosine", warmup_steps=10, min_lr=1e-5)
    trainer = Trainer(build_model(DecoderOnlyConfig(vocab_size=8, d_model=8, n_heads=2, d_ff=8,
                                                    n_layers=1)), config, lambda rng: None)
    trainer.set_lr(2e-3)
    expected = build_schedule("cosine", 2e-3, 10, 100, 1e-5)
    assert [trainer.schedule(s) for s in (1, 10, 50, 100)] == [expected(s) for s in (1, 10, 50, 100)]
    with pytest.raises(ConfigError, match="lr"):
        trainer.set_lr(-1.0)


def test_the_papers_base_size_builds_and_learns_a_fixed_batch():
    # d_model 512, 8 heads, d_ff 2048, 6 + 6 layers: about 44M parameters, a few seconds here.
    config = EncoderDecoderConfig(vocab_size=100, d_model=512, n_heads=8, d_ff=2048, n_layers=6,
                                  max_len=32, dropout=0.1)
    model = build_model(config)
    assert model.num_params() > 44_000_000
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(3, 100, (4, 12)), rng.integers(3, 100, (4, 11))
    batch = Batch(src, np.concatenate([np.ones((4, 1), int), tgt[:, :-1]], axis=1), tgt)
    trainer = Trainer(model, TrainConfig(steps=4, lr=1e-4, optimizer="adam"), lambda rng: batch)
    losses = [trainer.step().loss for _ in range(4)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]
