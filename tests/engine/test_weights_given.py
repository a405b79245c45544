"""A model built for weights it is given (a checkpoint, a GPT-2 folder, a break switch's
rebuild, the gradient check's float64 twin) draws no random initial values: the weights go
straight into its packed buffer, and it computes what a randomly built model that then loaded
them computes. A traced step of a model whose weights stay fixed names them and copies none.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.maths.loss import CrossEntropyLoss
from engine.maths.param import WeightsMismatch
from engine.maths.switches import with_break
from engine.trace.gradcheck import float64_twin
from engine.trace.trace import Batch, record_step

CONFIGS = {
    "decoder_only": DecoderOnlyConfig(vocab_size=13, d_model=16, n_heads=2, d_ff=32, n_layers=2,
                                      max_len=8, norm="pre", activation="gelu",
                                      positional="learned", tie_embeddings=True, pad_id=0),
    "encoder_decoder": EncoderDecoderConfig(vocab_size=13, d_model=16, n_heads=2, d_ff=32,
                                            n_layers=1, max_len=8, pad_id=0),
}


def other_weights(config, seed: int = 7) -> dict[str, np.ndarray]:
    """Weights no seed of the config would draw: what a file would hold."""
    rng = np.random.default_rng(seed)
    return {p.name: rng.standard_normal(p.data.shape).astype(p.data.dtype)
            for p in build_model(config).params()}


class CountingGenerators:
    """np.random.default_rng, counting the standard_normal draws of the generators it makes."""

    def __init__(self, real):
        self.real, self.draws = real, 0

    def __call__(self, *args, **kwargs):
        outer, generator = self, self.real(*args, **kwargs)

        class Counting:
            def __getattr__(self, name):
                return getattr(generator, name)

            def standard_normal(self, *a, **k):
                outer.draws += 1
                return generator.standard_normal(*a, **k)

        return Counting()


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_built_with_weights_draws_nothing_and_holds_them(kind, monkeypatch):
    config = CONFIGS[kind]
    weights = other_weights(config)
    counting = CountingGenerators(np.random.default_rng)
    monkeypatch.setattr(np.random, "default_rng", counting)
    build_model(config)
    assert counting.draws > 0  # the random build draws every weight matrix
    counting.draws = 0
    model = build_model(config, weights)
    assert counting.draws == 0
    for param in model.params():
        np.testing.assert_array_equal(param.data, weights[param.name])
        assert np.shares_memory(param.data, model.packed.data)  # in the packed buffer
        assert not np.shares_memory(param.data, weights[param.name])  # a copy of its own
        assert not param.grad.any()


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_same_numbers_as_loading_into_a_random_model(kind):
    config = CONFIGS[kind]
    weights = other_weights(config)
    loaded = build_model(config)
    loaded.load_state_dict(weights)
    given = build_model(config, weights)
    ids = np.array([[1, 4, 5, 6], [1, 7, 8, 0]])
    if kind == "decoder_only":
        np.testing.assert_array_equal(given.forward(ids), loaded.forward(ids))
    else:
        np.testing.assert_array_equal(given.forward(ids, ids), loaded.forward(ids, ids))


def test_wrong_weights_are_named():
    config = CONFIGS["decoder_only"]
    weights = other_weights(config)
    with pytest.raises(ValueError, match="missing.*blocks.0.ln1.gamma"):
        build_model(config, {k: v for k, v in weights.items() if k != "blocks.0.ln1.gamma"})
    with pytest.raises(ValueError, match="unexpected.*extra"):
        build_model(config, {**weights, "extra": np.zeros(3)})
    bad = {**weights, "blocks.1.ffn.fc1.w": np.zeros((16, 31), dtype=np.float32)}
    with pytest.raises(WeightsMismatch) as caught:
        build_model(config, bad)
    assert caught.value.name == "blocks.1.ffn.fc1.w" and caught.value.expected == (16, 32)


def test_rebuilds_keep_the_weights_without_drawing(monkeypatch):
    config = CONFIGS["decoder_only"]
    model = build_model(config, other_weights(config))
    counting = CountingGenerators(np.random.default_rng)
    monkeypatch.setattr(np.random, "default_rng", counting)
    broken, _ = with_break(model, "no_scaling")
    twin = float64_twin(model)
    assert counting.draws == 0
    for ours, theirs, wide in zip(model.params(), broken.params(), twin.params()):
        np.testing.assert_array_equal(theirs.data, ours.data)
        assert wide.data.dtype == np.float64
        np.testing.assert_array_equal(wide.data, ours.data.astype(np.float64))


def _trace(model, weights_fixed: bool):
    ids = np.array([[1, 4, 5, 6, 2], [1, 7, 8, 9, 3]])
    batch = Batch(None, ids[:, :-1], ids[:, 1:])
    labels = [[str(i) for i in row] for row in ids]
    return record_step(model, CrossEntropyLoss(0), batch, None, labels, labels,
                       weights_fixed=weights_fixed)


def _weights_named(trace) -> list[np.ndarray]:
    return [event.tensors[name] for event in trace.events for name in ("w", "weight", "gamma")
            if name in event.tensors and event.phase == "forward"]


def test_a_trace_of_fixed_weights_names_them_without_copying():
    model = build_model(CONFIGS["decoder_only"], other_weights(CONFIGS["decoder_only"]))
    copied = _trace(model, weights_fixed=False)
    named = _trace(model, weights_fixed=True)
    assert len(_weights_named(named)) == len(_weights_named(copied)) > 10
    for array in _weights_named(copied):
        assert not np.shares_memory(array, model.packed.data)
    for array in _weights_named(named):
        assert np.shares_memory(array, model.packed.data)  # the model's own, tied head too
    assert named.loss == copied.loss
    for a, b in zip(named.events, copied.events):
        assert a.tensors.keys() == b.tensors.keys()
        for name in a.tensors:
            np.testing.assert_array_equal(a.tensors[name], b.tensors[name])
    ids = [a for e in named.events for a in e.tensors.values() if a.dtype.kind in "iub"]
    assert ids and not any(np.shares_memory(a, named.batch.tgt_in) for a in ids)  # still copied


def test_a_trace_of_fixed_weights_leaves_the_model_s_gradients_to_it():
    model = build_model(CONFIGS["decoder_only"], other_weights(CONFIGS["decoder_only"]))
    copied = _trace(model, weights_fixed=False)
    in_model = {p.name: p.grad.copy() for p in model.params()}
    assert any(g.any() for g in in_model.values())
    named = _trace(model, weights_fixed=True)
    for param in model.params():
        assert not param.grad.any()  # a fresh buffer of zeros: its pages handed back
        assert np.shares_memory(param.grad, model.packed.grad)
    for name, grad in named.param_grads().items():
        np.testing.assert_array_equal(grad, in_model[name])
        np.testing.assert_array_equal(grad, copied.param_grads()[name])
