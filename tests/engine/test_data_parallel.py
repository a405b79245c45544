"""engine.training.data_parallel: a batch run as shards gives the whole batch's loss and gradient, the
same bits on one thread or two, its own dropout per shard, and an exact resume."""
from __future__ import annotations

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.fast import parallel
from engine.training.checkpoint import load_checkpoint, save_checkpoint
from engine.maths.config import ConfigError
from engine.training.data_parallel import DataParallel, replica_of
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import recording
from engine.maths.batch import Batch
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig

PAD, V = 0, 11


def make_model(kind: str, dtype="float64", dropout=0.0, seed=0):
    common = dict(vocab_size=V, d_model=16, n_heads=2, d_ff=32, n_layers=2, max_len=12,
                  dropout=dropout, pad_id=PAD, dtype=dtype, seed=seed)
    if kind == "encoder-decoder":
        return build_model(EncoderDecoderConfig(**common))
    return build_model(DecoderOnlyConfig(**common, norm="pre", activation="gelu"))


def padded_batch(kind: str, rows=7, length=9, seed=3):
    """Rows of different lengths, so shards count different numbers of tokens."""
    rng = np.random.default_rng(seed)
    tgt = rng.integers(1, V, size=(rows, length + 1))
    lengths = rng.integers(2, length + 1, size=rows)
    tgt[np.arange(length + 1)[None, :] > lengths[:, None]] = PAD
    tgt[0, 2:] = PAD  # a short row: shard 0 counts fewer tokens than shard 1
    src = rng.integers(1, V, size=(rows, 6)) if kind == "encoder-decoder" else None
    inputs = (src, tgt[:, :-1]) if src is not None else (tgt[:, :-1],)
    return inputs, tgt[:, 1:]


def grads_and_result(model, shards, inputs, targets, smoothing=0.1):
    model.packed.zero_grad()
    result = DataParallel(model, shards, CrossEntropyLoss(PAD, smoothing)).step(inputs, targets)
    return model.packed.grad.copy(), result


@pytest.mark.parametrize("kind", ["encoder-decoder", "decoder-only"])
@pytest.mark.parametrize("shards", [2, 3, 7])
def test_shards_give_the_whole_batchs_loss_and_gradient(kind, shards):
    model = make_model(kind)
    inputs, targets = padded_batch(kind)
    whole, one = grads_and_result(model, 1, inputs, targets)
    split, many = grads_and_result(model, shards, inputs, targets)
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-15)
    assert not np.array_equal(split, whole)  # really summed in another order
    assert many.loss == pytest.approx(one.loss, rel=1e-13)
    assert (many.tokens, many.correct) == (one.tokens, one.correct)


def test_a_shard_with_no_counted_tokens_adds_nothing():
    model = make_model("decoder-only")
    inputs, targets = padded_batch("decoder-only", rows=4)
    targets = targets.copy()
    targets[2:] = PAD  # the second shard is all padding
    whole, one = grads_and_result(model, 1, inputs, targets)
    split, two = grads_and_result(model, 2, inputs, targets)
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-15)
    assert two.loss == pytest.approx(one.loss, rel=1e-13) and two.tokens == one.tokens


def test_more_shards_than_rows_runs_one_shard_per_row():
    model = make_model("decoder-only")
    inputs, targets = padded_batch("decoder-only", rows=2)
    whole, _ = grads_and_result(model, 1, inputs, targets)
    split, _ = grads_and_result(model, 5, inputs, targets)
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["encoder-decoder", "decoder-only"])
def test_the_same_bits_on_one_thread_and_on_two(kind):
    """Shards are part of the maths, threads are not (dropout on: each shard draws its own)."""
    inputs, targets = padded_batch(kind)
    results = []
    for threads in (1, 2):
        parallel.set_threads(threads)
        try:
            model = make_model(kind, dtype="float32", dropout=0.2)
            runner = DataParallel(model, 2, CrossEntropyLoss(PAD))
            for _ in range(2):
                model.packed.zero_grad()
                result = runner.step(inputs, targets)
            results.append((model.packed.grad.copy(), result.loss))
        finally:
            parallel.set_threads(1)
    assert np.array_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]


def test_each_shard_draws_its_own_dropout_masks():
    """Two shards of the same rows: equal masks would give equal gradient shares."""
    model = make_model("decoder-only", dropout=0.5)
    runner = DataParallel(model, 2, CrossEntropyLoss(PAD))
    inputs, targets = padded_batch("decoder-only", rows=1)
    model.packed.zero_grad()
    runner.step((np.repeat(inputs[0], 2, axis=0),), np.repeat(targets, 2, axis=0))
    replica_share = runner.replicas[1].packed.grad
    model_share = model.packed.grad - replica_share
    assert np.abs(model_share - replica_share).max() > 1e-3 * np.abs(model_share).max()


def test_a_replica_reads_the_models_current_weights_and_keeps_its_own_gradients():
    model = make_model("decoder-only")
    replica = replica_of(model)
    assert np.shares_memory(replica.packed.data, model.packed.data)
    assert not np.shares_memory(replica.packed.grad, model.packed.grad)
    model.packed.data *= 0.5  # what an optimizer step does, in place
    for mine, theirs in zip(model.params(), replica.params()):
        assert mine.name == theirs.name and np.array_equal(mine.data, theirs.data)


def test_a_recorder_sees_one_whole_pass():
    model = make_model("decoder-only")
    inputs, targets = padded_batch("decoder-only")
    with recording() as whole_pass:
        whole, _ = grads_and_result(model, 1, inputs, targets)
    with recording() as rec:
        traced, _ = grads_and_result(model, 2, inputs, targets)
    assert np.array_equal(traced, whole)
    assert [(e.phase, e.path) for e in rec.events] == [(e.phase, e.path) for e in whole_pass.events]
    assert rec.events[0].tensors["ids"].shape[0] == len(targets)  # every row, in one pass


def make_trainer(shards, model=None):
    config = TrainConfig(steps=8, batch_size=6, shards=shards, lr=1e-2, seed=5)

    def next_batch(rng):
        inputs, targets = padded_batch("encoder-decoder", rows=6, seed=int(rng.integers(1000)))
        return Batch(src=inputs[0], tgt_in=inputs[1], tgt_out=targets)

    return Trainer(model or make_model("encoder-decoder", dropout=0.2), config, next_batch)


def test_a_sharded_run_resumes_bit_for_bit(tmp_path):
    straight = make_trainer(2)
    expected = [s.loss for s in straight.run(8)]
    first = make_trainer(2)
    got = [s.loss for s in first.run(4)]
    save_checkpoint(tmp_path / "run.safetensors", first.model, optimizer_state=first.state(), step=4)
    ckpt = load_checkpoint(tmp_path / "run.safetensors")
    model = make_model("encoder-decoder", dropout=0.2, seed=9)
    model.load_state_dict(ckpt.state_dict)
    resumed = make_trainer(2, model)
    resumed.load_state(ckpt.optimizer_state)
    got += [s.loss for s in resumed.run(4)]
    assert got == expected
    assert np.array_equal(resumed.model.packed.data, straight.model.packed.data)


def test_a_sharded_run_learns_like_a_whole_batch_run():
    """Without dropout, two shards and one follow the same path to rounding."""
    one = make_trainer(1, make_model("encoder-decoder"))
    two = make_trainer(2, make_model("encoder-decoder"))
    a, b = one.run(8), two.run(8)
    np.testing.assert_allclose([s.loss for s in b], [s.loss for s in a], rtol=1e-9)
    assert [s.tokens for s in b] == [s.tokens for s in a]
    assert [s.accuracy for s in b] == [s.accuracy for s in a]


@pytest.mark.parametrize("change, message", [
    ({"shards": 0}, "shards must be a positive integer"),
    ({"shards": 33, "batch_size": 32}, r"shards \(33\) must be at most batch_size \(32\)"),
])
def test_bad_shard_counts_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change).validate()
