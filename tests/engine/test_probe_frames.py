"""The probe: its attention at a snapshot is the attention of a fresh forward of the model
restored to that snapshot; its entropies are the textbook formula's."""
import math

import numpy as np
import pytest

from engine.maths.batch import Batch
from engine.maths.loss import CrossEntropyLoss
from engine.maths.models import build_model
from engine.trace.trace import record_step
from engine.training.probe import attention_entropy, probe_frame, probe_snapshots
from engine.training.snapshots import Snapshots
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig
from test_train import copy_batch, decoder_only, enc_dec, lm_batch


def one_item(batch_of_many):
    rng = np.random.default_rng(3)
    b = batch_of_many(rng)
    return Batch(None if b.src is None else b.src[:1], b.tgt_in[:1], b.tgt_out[:1])


@pytest.mark.parametrize("make_model, batches", [(enc_dec, copy_batch()),
                                                 (decoder_only, lm_batch())])
def test_probe_at_a_snapshot_equals_a_fresh_forward_of_the_restored_model(make_model, batches):
    trainer = Trainer(make_model(), TrainConfig(steps=30, lr=1e-2, seed=2), batches)
    snapshots = Snapshots(every=10, budget_bytes=2**30)
    snapshots.take(trainer)
    for _ in range(30):
        trainer.step()
        snapshots.maybe_take(trainer)
    probe = one_item(batches)
    frames = probe_snapshots(trainer.model, [(s.step, s.weights) for s in snapshots.kept], probe)
    assert [f.step for f in frames] == [0, 10, 20, 30]
    for snapshot, frame in zip(snapshots.kept, frames):
        fresh = build_model(trainer.model.config)
        fresh.packed.data[...] = snapshot.weights
        trace = record_step(fresh, CrossEntropyLoss(fresh.config.pad_id), probe, None,
                            [["?"] * probe.tgt_in.shape[1]], [["?"] * probe.tgt_in.shape[1]])
        assert list(frame.layers) == trace.attention_paths
        heads = fresh.config.n_heads
        for path in trace.attention_paths:
            assert frame.attention[path].shape[0] == heads
            for h in range(heads):
                np.testing.assert_array_equal(frame.attention[path][h],
                                              trace.attention(path, h).values)
        assert frame.loss == pytest.approx(trace.loss, rel=1e-6)
        assert frame.cross == {p for p in trace.attention_paths if p.endswith("cross_attn")}
    # the maps change with training: the test compares different things at each snapshot
    first, last = frames[0], frames[-1]
    assert not np.allclose(first.attention[first.layers[-1]], last.attention[last.layers[-1]])
    assert last.loss < first.loss


def test_probing_the_live_model_leaves_its_weights_and_modes_alone():
    model = enc_dec(dropout=0.1)
    model.train()
    before = model.packed.data.copy()
    frame = probe_frame(model, one_item(copy_batch()), step=0)
    assert np.array_equal(model.packed.data, before)
    assert all(m.training for m in model.modules())
    assert len(frame.layers) == 6  # 2 encoder self, 2 decoder self, 2 cross
    # eval mode: no dropout, so probing twice gives the same maps
    again = probe_frame(model, one_item(copy_batch()), step=0)
    for layer in frame.layers:
        np.testing.assert_array_equal(frame.attention[layer], again.attention[layer])


def shannon_entropy(p: np.ndarray) -> float:
    """H(p) = -sum p log p in float64, the row renormalised first (a float32 row's sum is not
    exactly 1), 0 log 0 taken as 0: written here apart from the engine's own."""
    p = p / p.sum()
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def test_attention_entropy_is_the_shannon_entropy_averaged_over_queries():
    frame = probe_frame(enc_dec(), one_item(copy_batch()), step=0)
    table = attention_entropy(frame)
    assert table.shape == (6, 4)
    for i, layer in enumerate(frame.layers):
        for h in range(4):
            rows = frame.attention[layer][h].astype(np.float64)  # (T, S)
            live = [r for r in rows if r.sum() > 0]
            expected = sum(shannon_entropy(r) for r in live) / len(live)
            assert table[i, h] == pytest.approx(expected, rel=1e-6)
            assert 0 <= table[i, h] <= math.log(rows.shape[1]) + 1e-9
