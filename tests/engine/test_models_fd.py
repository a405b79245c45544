"""Whole-model gradients by finite differences, and causality. No PyTorch needed.

Gradient check: with a random upstream gradient G (B,T,V), the scalar f = sum(logits * G) has
d f / d logits = G, so `model.backward(G)` must give d f / d param for every parameter. Central
differences (float64, engine.trace.gradcheck) check it element by element: every element of small
tensors, a seeded sample of 20 of larger ones. A random G, never all ones: with ones, errors that
cancel across the vocabulary would pass.

Causality: the logits at positions <= t may not depend on tokens after t, in a decoder-only
model and on the decoder side of an encoder-decoder.

Shapes: B batch, S source length, T target length, V vocabulary, D model width.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine import BreakSwitches, DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.trace.gradcheck import numeric_grad, rel_error, sample_indices

V, D, H, FF, LAYERS, MAX_LEN = 7, 8, 2, 12, 2, 6
B, S, T = 2, 5, 4
PAD = 0
TOL = 1e-6
FD_EPS = 1e-5  # f is O(10): at 1e-6 rounding (1e-16 * |f| / eps) reaches 1e-9 and swamps small grads
# Elements with |analytic| + |numeric| below FLOOR are held to an absolute error of TOL * FLOOR
# (1e-8) instead of a relative one: central differences carry 1e-11..1e-9 of rounding noise
# (more when a LayerNorm divides by a small spread, as with the break switches), which is not a
# relative error of a gradient that is truly ~0, such as the key biases' (softmax ignores a shift
# shared by all keys). Real bugs give O(1) relative errors on O(0.1) gradients.
FLOOR = 1e-2
FULL_CHECK_SIZE = 16  # tensors up to this size are checked in every element
SAMPLES = 20  # elements checked in each larger tensor


def tiny_config(kind: str, **overrides):
    cls = EncoderDecoderConfig if kind == "encoder_decoder" else DecoderOnlyConfig
    settings = dict(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_layers=LAYERS, max_len=MAX_LEN,
                    dropout=0.0, pad_id=PAD, dtype="float64", seed=1)
    settings.update(overrides)
    return cls(**settings)


def randomize(model, seed: int) -> None:
    randomize_params(model.params(), seed)


def randomize_params(params, seed: int) -> None:
    """Weights of unit-scale outputs, LayerNorm gains away from 1 and biases away from 0, so no
    gradient is trivially zero and softmax rows are far from uniform."""
    rng = np.random.default_rng(seed)
    for param in params:
        noise = rng.standard_normal(param.data.shape)
        if param.name.endswith(".w"):
            param.data[...] = noise / np.sqrt(param.data.shape[0])
        elif param.name.endswith(".gamma"):
            param.data[...] = 1.0 + 0.3 * noise
        elif param.name.endswith((".b", ".beta")):
            param.data[...] = 0.3 * noise
        else:  # token and position tables
            param.data[...] = 0.7 * noise


def padded_inputs(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Model inputs with padding at the end of the second row (source and target)."""
    tgt = rng.integers(1, V, size=(B, T))
    tgt[1, T - 1:] = PAD
    if kind == "decoder_only":
        return (tgt,)
    src = rng.integers(1, V, size=(B, S))
    src[1, S - 2:] = PAD
    return src, tgt


FD_CASES = {
    "encdec-post-relu-sinusoidal": ("encoder_decoder", dict()),
    "encdec-pre-gelu-learned-tied": ("encoder_decoder", dict(norm="pre", activation="gelu",
                                                             positional="learned",
                                                             tie_embeddings=True)),
    "dec-pre-gelu-learned-tied": ("decoder_only", dict(norm="pre", activation="gelu",
                                                       positional="learned", tie_embeddings=True)),
    "dec-post-relu-sinusoidal-unscaled": ("decoder_only", dict(scale_embedding=False)),
    # The teaching switches change the backward path too (softmax over queries, no residual).
    "dec-every-break-switch": ("decoder_only", dict(
        norm="pre", activation="gelu", positional="learned",
        breaks=BreakSwitches(no_causal_mask=True, no_scaling=True, softmax_wrong_axis=True,
                             no_residual=True, no_positional=True))),
    "encdec-softmax-wrong-axis-no-residual": ("encoder_decoder", dict(
        breaks=BreakSwitches(softmax_wrong_axis=True, no_residual=True, no_scaling=True))),
}


@pytest.mark.parametrize("case", list(FD_CASES))
def test_every_parameter_gradient_matches_finite_differences(case):
    kind, overrides = FD_CASES[case]
    model = build_model(tiny_config(kind, **overrides))
    model.eval()
    randomize(model, seed=2)
    rng = np.random.default_rng(3)
    inputs = padded_inputs(kind, rng)
    upstream = rng.standard_normal((B, T, V))  # G: a random upstream gradient

    def f() -> float:
        return float(np.sum(model.forward(*inputs) * upstream))

    model.packed.zero_grad()
    model.forward(*inputs)
    model.backward(upstream)

    failures = {}
    for param in model.params():
        analytic = param.grad.copy()  # the FD loop below re-runs forward, never backward
        if param.data.size <= FULL_CHECK_SIZE:
            indices = list(np.ndindex(param.data.shape))
        else:
            indices = sample_indices(param.data.shape, SAMPLES, rng)
        numeric = numeric_grad(f, param.data, indices, eps=FD_EPS)
        picked = np.array([analytic[idx] for idx in indices])
        err = rel_error(picked, numeric, floor=FLOOR).max()
        if err > TOL:
            failures[param.name] = err
    assert not failures, "gradients differ from finite differences: " + ", ".join(
        f"{name} {err:.1e}" for name, err in sorted(failures.items(), key=lambda kv: -kv[1]))


def test_finite_difference_check_catches_a_wrong_gradient():
    """The check can fail: a gradient off by 1e-4 in one element is reported."""
    model = build_model(tiny_config("decoder_only"))
    model.eval()
    randomize(model, seed=2)
    rng = np.random.default_rng(3)
    (ids,) = padded_inputs("decoder_only", rng)
    upstream = rng.standard_normal((B, T, V))
    model.packed.zero_grad()
    model.forward(ids)
    model.backward(upstream)
    param = next(p for p in model.params() if p.name == "blocks.1.ffn.fc1.w")
    idx = (3, 5)
    numeric = numeric_grad(lambda: float(np.sum(model.forward(ids) * upstream)), param.data, [idx],
                           eps=FD_EPS)
    assert rel_error(param.grad[idx], numeric, floor=FLOOR).max() <= TOL
    assert rel_error(param.grad[idx] + 1e-4, numeric, floor=FLOOR).max() > TOL


# -- causality --------------------------------------------------------------------------------
CAUSAL_T = 6


def _changed_after(ids: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """ids with every token after position t replaced by a different non-pad token."""
    out = ids.copy()
    shift = rng.integers(1, V - 1, size=out[:, t + 1:].shape)
    out[:, t + 1:] = (out[:, t + 1:] - 1 + shift) % (V - 1) + 1  # in [1, V), never the same
    return out


def _causal_model(kind: str, **overrides):
    model = build_model(tiny_config(kind, max_len=CAUSAL_T + 2, **overrides))
    model.eval()
    randomize(model, seed=4)
    return model


@pytest.mark.parametrize("kind", ["decoder_only", "encoder_decoder"])
@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("padding", ["none", "left"])
def test_logits_up_to_t_ignore_later_tokens(kind, norm, padding):
    """Left padding too: the first queries of a left-padded row see only pad keys, and must
    attend to nothing rather than to every key (the future included)."""
    model = _causal_model(kind, norm=norm)
    rng = np.random.default_rng(5)
    src = rng.integers(1, V, size=(B, S))
    tgt = rng.integers(1, V, size=(B, CAUSAL_T))
    if padding == "left":
        tgt[0, :2] = PAD

    def logits(ids):
        return model.forward(ids) if kind == "decoder_only" else model.forward(src, ids)

    base = logits(tgt)  # (B,T,V)
    for t in range(CAUSAL_T - 1):
        changed = logits(_changed_after(tgt, t, rng))
        np.testing.assert_allclose(changed[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-12,
                                   err_msg=f"logits at positions <= {t} saw a later token")
        # and the change is real: the positions that read it do move
        assert np.abs(changed[:, t + 1:] - base[:, t + 1:]).max() > 1e-3


def test_causality_test_detects_a_model_that_looks_ahead():
    """With the no_causal_mask break switch the same comparison must fail."""
    model = _causal_model("decoder_only", breaks=BreakSwitches(no_causal_mask=True))
    rng = np.random.default_rng(5)
    tgt = rng.integers(1, V, size=(B, CAUSAL_T))
    base = model.forward(tgt)
    changed = model.forward(_changed_after(tgt, 0, rng))
    assert np.abs(changed[:, :1] - base[:, :1]).max() > 1e-3


def test_every_decoder_position_sees_the_whole_source():
    """Cross-attention is not causal: changing the last source token moves every position."""
    model = _causal_model("encoder_decoder")
    rng = np.random.default_rng(6)
    src = rng.integers(1, V, size=(B, S))
    tgt = rng.integers(1, V, size=(B, CAUSAL_T))
    base = model.forward(src, tgt)
    src2 = src.copy()
    src2[:, -1] = src2[:, -1] % (V - 1) + 1  # another non-pad token
    moved = np.abs(model.forward(src2, tgt) - base).max(axis=-1)  # (B,T)
    assert np.all(moved > 1e-6)


def test_source_padding_is_invisible():
    """Appending padding to the source (masked as keys everywhere) leaves the logits unchanged."""
    model = _causal_model("encoder_decoder")
    rng = np.random.default_rng(7)
    src = rng.integers(1, V, size=(B, S))
    tgt = rng.integers(1, V, size=(B, CAUSAL_T))
    padded = np.concatenate([src, np.full((B, 3), PAD)], axis=1)  # (B, S+3)
    np.testing.assert_allclose(model.forward(padded, tgt), model.forward(src, tgt),
                               rtol=0, atol=1e-12)


def test_learned_positions_backward_writes_the_rows_the_forward_read():
    from engine.maths.layers import PositionalEncoding

    layer = PositionalEncoding("pos_emb", "learned", 8, 3, 0.1, np.random.default_rng(0),
                               np.dtype("float64"))
    layer.forward(np.zeros((1, 2, 3)), offset=3)
    layer.backward(np.ones((1, 2, 3)))
    rows_with_grad = np.flatnonzero(np.abs(layer.weight.grad).sum(axis=1))
    assert rows_with_grad.tolist() == [3, 4]
