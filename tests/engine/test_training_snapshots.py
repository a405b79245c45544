"""Snapshots of a run: rewinding to one and training the same steps again gives the same losses
bit for bit; over a long run the snapshots stay within their memory budget, thinned with age."""
import numpy as np
import pytest

from engine.training.snapshots import Snapshots
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig
from test_train import copy_batch, decoder_only, enc_dec, lm_batch


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_rewinding_to_a_snapshot_retraces_the_same_losses(optimizer):
    config = TrainConfig(steps=40, optimizer=optimizer, lr=3e-3, seed=5, momentum=0.9
                         if optimizer == "sgd" else 0.0, warmup_steps=5, schedule="cosine")
    trainer = Trainer(enc_dec(dropout=0.1), config, copy_batch())  # dropout: its rng matters
    snapshots = Snapshots(every=5, budget_bytes=2**30)
    snapshots.take(trainer)  # step 0
    losses = {}
    for _ in range(20):
        stats = trainer.step()
        losses[stats.step] = stats.loss
        snapshots.maybe_take(trainer)
    final = trainer.model.packed.data.copy()
    assert snapshots.steps == [0, 5, 10, 15, 20]
    for start in (10, 0):
        snapshots.restore(snapshots.at(start), trainer)
        assert trainer.step_count == start
        again = [trainer.step().loss for _ in range(20 - start)]
        assert again == [losses[s] for s in range(start + 1, 21)]  # bit for bit
        assert np.array_equal(trainer.model.packed.data, final)
    with pytest.raises(KeyError, match=r"snapshots are kept at steps \[0, 5, 10, 15, 20\]"):
        snapshots.at(7)


def test_memory_stays_within_budget_over_a_long_run_and_old_snapshots_thin_out():
    trainer = Trainer(decoder_only(), TrainConfig(steps=600, lr=1e-3, seed=1), lm_batch())
    one = Snapshots(every=1, budget_bytes=2**30).take(trainer).nbytes
    snapshots = Snapshots(every=2, budget_bytes=10 * one)
    snapshots.take(trainer)
    taken = 1
    for _ in range(600):
        trainer.step()
        if snapshots.maybe_take(trainer) is not None:
            taken += 1
            assert snapshots.nbytes <= snapshots.budget_bytes
            assert len(snapshots.kept) <= 10
            assert snapshots.steps[0] == 0 and snapshots.steps[-1] == trainer.step_count
    steps = snapshots.steps
    assert taken == 301 and len(steps) == 10
    gaps = np.diff(steps)
    assert gaps[-1] == 2  # the latest training is kept densely
    assert gaps[0] >= 8 * gaps[-1]  # the distant past sparsely
    assert all(a >= b for a, b in zip(gaps, gaps[1:])), steps  # spacing grows with age
    # the same run gives the same snapshots: thinning follows a rule, not chance
    again = Trainer(decoder_only(), TrainConfig(steps=600, lr=1e-3, seed=1), lm_batch())
    other = Snapshots(every=2, budget_bytes=10 * one)
    other.take(again)
    for _ in range(600):
        again.step()
        other.maybe_take(again)
    assert other.steps == steps


def test_bad_settings_and_a_budget_too_small_say_what_to_change():
    with pytest.raises(ValueError, match="'every' must be a whole number"):
        Snapshots(every=0, budget_bytes=100)
    with pytest.raises(ValueError, match="budget_bytes must be"):
        Snapshots(every=1, budget_bytes=0)
    trainer = Trainer(decoder_only(), TrainConfig(steps=2, seed=1), lm_batch())
    with pytest.raises(ValueError, match="raise budget_bytes"):
        Snapshots(every=1, budget_bytes=100).take(trainer)
