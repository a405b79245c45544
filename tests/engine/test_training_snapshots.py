"""Snapshots of a run: rewinding to one and training the same steps again gives the same losses
bit for bit; over a long run the snapshots stay within their memory budget, spread evenly over it."""
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


def test_memory_stays_within_budget_over_a_long_run_and_kept_steps_spread_over_it():
    trainer = Trainer(decoder_only(), TrainConfig(steps=600, lr=1e-3, seed=1), lm_batch())
    one = Snapshots(every=1, budget_bytes=2**30).take(trainer).nbytes
    snapshots = Snapshots(every=2, budget_bytes=10 * one)
    snapshots.take(trainer)
    taken = 0
    for _ in range(600):
        stats = trainer.step()
        if snapshots.maybe_take(trainer, stats.loss) is not None:
            taken += 1
            assert snapshots.nbytes <= snapshots.budget_bytes
            assert len(snapshots.kept) <= 10
            assert snapshots.steps[0] == 0 and snapshots.steps[-1] == trainer.step_count
            assert snapshots.kept[-1].loss == stats.loss
    steps = snapshots.steps
    assert taken > 20 and 5 <= len(steps) <= 10, steps
    # spread evenly over the whole run: equal gaps (the latest may close a shorter one), and
    # the early run is as well kept as the late one
    gaps = np.diff(steps)
    assert len(set(gaps[:-1].tolist())) == 1 and gaps[-1] <= gaps[0], steps
    assert steps[0] == 0 and steps[-1] > 600 - gaps[0] and gaps[0] <= 600 / 4, steps
    assert sum(s < 300 for s in steps) >= sum(s > 300 for s in steps) - 1, steps
    # the same run gives the same snapshots: thinning follows a rule, not chance
    again = Trainer(decoder_only(), TrainConfig(steps=600, lr=1e-3, seed=1), lm_batch())
    other = Snapshots(every=2, budget_bytes=10 * one)
    other.take(again)
    for _ in range(600):
        again.step()
        other.maybe_take(again)
    assert other.steps == steps


def test_restore_forgets_the_later_runs_last_good_weights():
    """A non-finite step right after a rewind keeps the snapshot's weights: not the weights
    the rewound-away future had kept to undo its own latest update."""
    trainer = Trainer(decoder_only(), TrainConfig(steps=20, lr=1e-3, seed=1), lm_batch())
    snapshots = Snapshots(every=5, budget_bytes=2**30)
    for _ in range(10):
        trainer.step()
        snapshots.maybe_take(trainer)
    snapshots.restore(snapshots.at(5), trainer)
    real_forward = trainer.loss_fn.forward
    trainer.loss_fn.forward = lambda *args: real_forward(*args) * float("nan")
    stats = trainer.step()
    assert stats.nonfinite and stats.weights_of_step is None
    assert np.array_equal(trainer.model.packed.data, snapshots.at(5).weights)


def test_the_reading_api_steps_losses_weights_and_a_model_to_explore():
    trainer = Trainer(decoder_only(), TrainConfig(steps=20, lr=1e-3, seed=1), lm_batch())
    snapshots = Snapshots(every=4, budget_bytes=2**30)
    snapshots.take(trainer)
    losses = {}
    for _ in range(8):
        stats = trainer.step()
        losses[stats.step] = stats.loss
        snapshots.maybe_take(trainer, stats.loss)
    kept = snapshots.kept
    assert [(s.step, s.loss) for s in kept] == [(0, None), (4, losses[4]), (8, losses[8])]
    model = kept[1].model()
    assert model is not trainer.model and np.array_equal(model.packed.data, kept[1].weights)
    assert not kept[1].weights.flags.writeable
    snapshots.restore(kept[0], trainer)
    trainer.step()
    snapshots.maybe_take(trainer)  # step 1: off the grid, nothing taken
    trainer.run(3)
    snapshots.maybe_take(trainer)  # step 4 again: the old future goes, in a new list
    assert [s.step for s in kept] == [0, 4, 8] and snapshots.steps == [0, 4]
    assert snapshots.nearest(3).step == 4 and snapshots.nearest(1).step == 0
    branch = snapshots.copy_until(0)
    assert branch.steps == [0] and snapshots.steps == [0, 4]


def test_bad_settings_and_a_budget_too_small_say_what_to_change():
    with pytest.raises(ValueError, match="'every' must be a whole number"):
        Snapshots(every=0, budget_bytes=100)
    with pytest.raises(ValueError, match="budget_bytes must be"):
        Snapshots(every=1, budget_bytes=0)
    trainer = Trainer(decoder_only(), TrainConfig(steps=2, seed=1), lm_batch())
    with pytest.raises(ValueError, match="raise budget_bytes"):
        Snapshots(every=1, budget_bytes=100).take(trainer)
