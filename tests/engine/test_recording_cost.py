"""What a recorded step computes: the step's own arithmetic, and what the trace shows only when
a reader asks for it."""
from __future__ import annotations

import numpy as np

from engine import DecoderOnlyConfig, build_model
from engine.maths.layers import linear
from engine.maths.loss import CrossEntropyLoss
from engine.maths.optim import Adam
from engine.maths.recorder import BACKWARD, FORWARD, Recorder, recording


def _model():
    model = build_model(DecoderOnlyConfig(vocab_size=11, d_model=16, n_heads=4, d_ff=32,
                                          n_layers=1, max_len=8, pad_id=0, norm="pre",
                                          activation="gelu", seed=5))
    model.train()
    return model


def _recorded_step(model):
    ids = np.random.default_rng(6).integers(1, 11, size=(3, 8))
    loss_fn = CrossEntropyLoss(0)
    model.zero_grad()
    with recording(Recorder(long_lived=[p.data for p in model.params()])) as rec:
        loss_fn.forward(model.forward(ids[:, :-1]), ids[:, 1:])
        model.backward(loss_fn.backward())
    return rec.events


def test_the_shares_of_the_attention_input_gradient_are_computed_when_read(monkeypatch):
    """q, k and v read one input; the step computes its gradient as one product, and each
    projection's own share (d_q Wq^T, ...) only when a reader asks: from the weights as they
    were when recorded, even after an optimizer step changed them in place."""
    calls = []
    real = linear.input_gradient
    monkeypatch.setattr(linear, "input_gradient",
                        lambda d_out, w: calls.append(w.shape) or real(d_out, w))
    model = _model()
    events = _recorded_step(model)
    assert calls == []  # the recorded step did not compute them
    Adam(model.packed, lr=0.1).step()  # the weights change in place

    at = {(e.phase, e.path): e for e in events}
    shares = []
    for name in ("q_proj", "k_proj", "v_proj"):
        forward = at[(FORWARD, f"blocks.0.self_attn.{name}")]
        backward = at[(BACKWARD, f"blocks.0.self_attn.{name}")]
        assert "d_x" in backward.tensors and len(calls) == len(shares)  # asking for the name computes nothing
        d_x = backward.tensors["d_x"]
        assert np.array_equal(d_x, backward.tensors["d_out"] @ forward.tensors["w"].T)
        assert not np.array_equal(forward.tensors["w"], getattr(model.blocks[0].sublayers[0].inner,
                                                                name).w.data)
        assert backward.tensors["d_x"] is d_x  # computed once, then kept
        shares.append(d_x)
    assert len(calls) == 3
    # the three shares sum to the input's gradient, which the step computed in one product
    d_input = at[(BACKWARD, "blocks.0.ln1")].tensors["d_out"]
    np.testing.assert_allclose(sum(shares), d_input, rtol=1e-5, atol=1e-6)
