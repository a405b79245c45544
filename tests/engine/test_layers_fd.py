"""Every layer's backward, proved by finite differences, one layer at a time. No PyTorch needed.

test_models_fd.py checks whole models; an error there says "some gradient is wrong". Here each
layer is checked alone, so a failure names the layer and the tensor. With a random upstream
gradient G (never all ones: with ones, errors that cancel across a row would pass), the scalar
f = sum(layer(inputs) * G) has d f / d out = G, so `backward(G)` must give d f / d input for
every float input and d f / d param for every parameter. Central differences in float64
(engine.trace.gradcheck) check every element of tensors up to FULL_CHECK_SIZE and a seeded sample of
larger ones, with the same error floor as test_models_fd.py (near-zero gradients, such as the
key biases', are judged by absolute error). Parameters are randomized away from their
initialisation (gains != 1, biases != 0), so no gradient is trivially zero.

Dropout in training mode draws its mask in forward: each forward first restores the dropout
generator's state, so every finite-difference forward uses the same mask as the backward.
Layers and sublayers are checked twice (conftest `engine_threads`): inline and with every
operation split in row blocks on two threads, so the split code paths are proved too. Whole
blocks, chains of sublayers proved both ways, run inline only (split runs 2-3x slower).

CrossEntropyLoss is not checked here: test_loss.py already checks its backward by finite
differences with label smoothing and ignored ids.

Shapes: B batch, T query/target length, S key/source length, D model width, F d_ff, V vocab.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest

from engine import BreakSwitches, DecoderOnlyConfig, Module, Param
from engine.maths.blocks import (CROSS_ATTENTION, FEED_FORWARD, SELF_ATTENTION, DecoderBlock,
                           EncoderBlock, Sublayer)
from engine.trace.gradcheck import numeric_grad, rel_error, sample_indices
from engine.maths.layers import (Activation, Dropout, FeedForward, LayerNorm, Linear,
                           MultiHeadAttention, PositionalEncoding, ResidualAdd, TiedOutput,
                           TokenEmbedding)
from engine_threads import engine_threads  # noqa: E402,F401  (a fixture)
from test_models_fd import randomize_params

B, T, S, D, H, FF, V, MAX_LEN = 2, 4, 5, 8, 2, 12, 5, 6
F64 = np.dtype("float64")
TOL = 1e-6
FD_EPS = 1e-5  # f is O(10): at 1e-6 rounding (1e-16 * |f| / eps) would swamp small gradients
FLOOR = 1e-2  # below it, |a| + |n| counts as ~0 and the error is judged absolutely (1e-8)
FULL_CHECK_SIZE = 64  # tensors up to this size (a D x D weight, a (B,T,D) input): every element
BLOCK_FULL_CHECK_SIZE = 16  # in sublayers and blocks (~20 tensors each), as in test_models_fd
SAMPLES = 24  # elements checked in each larger tensor
ALL_BREAKS = BreakSwitches(no_causal_mask=True, no_scaling=True, softmax_wrong_axis=True,
                           no_residual=True, no_positional=True)


@dataclass
class Case:
    """A layer wired for checking: `forward()` reads `inputs` (perturbed in place by the
    differences) and returns the output; `backward(G)` returns {input name: gradient or None}
    (None: the output does not depend on it) and accumulates into `params`' grads."""

    params: list[Param]
    inputs: dict[str, np.ndarray]
    forward: Callable[[], np.ndarray]
    backward: Callable[[np.ndarray], dict[str, np.ndarray | None]]
    full_check_size: int = FULL_CHECK_SIZE  # larger tensors: a sample of SAMPLES elements


def gradient_errors(case: Case, seed: int = 0) -> dict[str, float]:
    """{"d_<input>" or param name: max relative error of its gradient vs central differences}."""
    rng = np.random.default_rng(seed)
    upstream = rng.standard_normal(case.forward().shape)  # G
    for param in case.params:
        param.grad[...] = 0
    case.forward()
    d_inputs = case.backward(upstream)
    # Copies: the difference loop re-runs forward (never backward), which may reuse buffers.
    targets = [(f"d_{name}", array, None if d_inputs[name] is None else d_inputs[name].copy())
               for name, array in case.inputs.items()]
    targets += [(p.name, p.data, p.grad.copy()) for p in case.params]

    def f() -> float:
        return float(np.sum(case.forward() * upstream))

    errors = {}
    for name, array, analytic in targets:
        analytic = np.zeros_like(array) if analytic is None else analytic
        assert analytic.shape == array.shape, f"{name}: gradient shape {analytic.shape}"
        if array.size <= case.full_check_size:
            indices = list(np.ndindex(array.shape))
        else:
            indices = sample_indices(array.shape, SAMPLES, rng)
        numeric = numeric_grad(f, array, indices, eps=FD_EPS)
        picked = np.array([analytic[idx] for idx in indices])
        errors[name] = float(rel_error(picked, numeric, floor=FLOOR).max())
    return errors


def assert_gradients_match(case: Case) -> None:
    errors = gradient_errors(case)
    bad = {name: err for name, err in errors.items() if not err <= TOL}
    assert not bad, "gradients differ from finite differences: " + ", ".join(
        f"{name} {err:.1e}" for name, err in sorted(bad.items(), key=lambda kv: -kv[1]))


# -- building layers --------------------------------------------------------------------------
def config(**overrides) -> DecoderOnlyConfig:
    settings = dict(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_layers=1, max_len=MAX_LEN,
                    dropout=0.0, dtype="float64", seed=1)
    settings.update(overrides)
    return DecoderOnlyConfig(**settings)


def randomize(params: list[Param], seed: int = 2) -> list[Param]:
    """As for whole models: unit-scale outputs, gains away from 1, biases away from 0."""
    randomize_params(params, seed)
    return params


def inputs(*shapes: tuple[int, ...], seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def replaying(module: Module, forward: Callable[[], np.ndarray],
              rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """`module` in train mode, and `forward` with its dropout generator rewound before each
    call: every call draws the same masks, the ones backward uses."""
    module.train()
    state = rng.bit_generator.state

    def rewound() -> np.ndarray:
        rng.bit_generator.state = state
        return forward()
    return rewound


def rng0() -> np.random.Generator:
    return np.random.default_rng(0)


def padding_keep(length: int, n_pad: int) -> np.ndarray:
    """(B,1,1,length): the last n_pad keys of the second row are padding."""
    keep = np.ones((B, 1, 1, length), dtype=bool)
    keep[1, ..., length - n_pad:] = False
    return keep


def left_padding_keep(length: int, n_pad: int) -> np.ndarray:
    """(B,1,1,length): the first n_pad keys of the second row are padding."""
    keep = np.ones((B, 1, 1, length), dtype=bool)
    keep[1, ..., :n_pad] = False
    return keep


CAUSAL = np.tril(np.ones((T, T), dtype=bool))[None, None]  # (1,1,T,T)
MASKS = {"causal": CAUSAL, "padding": padding_keep(T, 1), "causal+padding": CAUSAL &
         padding_keep(T, 1), "nomask": None,
         # row 1's first query sees only a pad key: a fully masked row
         "causal+left-padding": CAUSAL & left_padding_keep(T, 1)}


def unary(layer: Module, x: np.ndarray | None = None, rng: np.random.Generator | None = None,
          **kwargs) -> Case:
    """A layer of one input x (B,T,D) unless given; `rng`: its dropout generator, to rewind."""
    x = inputs((B, T, D))[0] if x is None else x
    forward = lambda: layer.forward(x, **kwargs)  # noqa: E731
    return Case(randomize(layer.params()), {"x": x},
                replaying(layer, forward, rng) if rng else forward,
                lambda g: {"x": layer.backward(g)})


def tied_case(with_embedding: bool) -> Case:
    """logits = x E^T; with the embedding: logits = emb(ids) E^T, so E's grad gets both uses."""
    emb = TokenEmbedding("emb", V, D, np.sqrt(D), 0.02, rng0(), F64)
    head = TiedOutput("head", emb.weight)
    if not with_embedding:
        return replace(unary(head), params=randomize(emb.params()))
    ids = np.array([[1, 3, 3, 0], [4, 1, 2, 3]])
    return Case(randomize(emb.params()), {}, lambda: head.forward(emb.forward(ids)),
                lambda g: emb.backward(head.backward(g)) or {})  # ids: no input gradient


def embedding_case() -> Case:
    layer = TokenEmbedding("emb", V, D, 2.5, 0.02, rng0(), F64)
    ids = np.array([[1, 3, 3, 0], [4, 3, 2, 1]])  # 3 three times, 1 twice: grads accumulate
    return Case(randomize(layer.params()), {}, lambda: layer.forward(ids),
                lambda g: layer.backward(g) or {})


def positional(kind: str, disabled: bool = False) -> PositionalEncoding:
    return PositionalEncoding("pos", kind, MAX_LEN, D, 0.02, rng0(), F64, disabled=disabled)


def relu_inputs() -> np.ndarray:
    (x,) = inputs((B, T, FF))
    return x + np.sign(x) * 0.05  # no element within 0.05 of the kink


def dropout_case(training: bool) -> Case:
    rng = np.random.default_rng(5)
    layer = Dropout("drop", 0.3, rng)
    return unary(layer, rng=rng) if training else unary(layer.eval())


def residual_case(disabled: bool) -> Case:
    layer = ResidualAdd("res", disabled=disabled)
    x, fx = inputs((B, T, D), (B, T, D))
    return Case([], {"x": x, "fx": fx}, lambda: layer.forward(x, fx),
                lambda g: dict(zip(("x", "fx"), layer.backward(g))))


def attention_case(kind: str, mask: str, breaks: bool = False, dropout: float = 0.0) -> Case:
    """kind "self": forward(x, x, keep) (q, k, v from one input: their gradients add);
    "self-unfused": keys and values from an equal copy of x; "cross": from memory (B,S,D)."""
    cfg = config(breaks=ALL_BREAKS if breaks else BreakSwitches(), dropout=dropout)
    drop_rng = np.random.default_rng(5)
    layer = MultiHeadAttention("attn", cfg, rng0(), drop_rng)
    x, memory = inputs((B, T, D), (B, S, D))
    if kind == "cross":
        keep = padding_keep(S, 2) if mask == "padding" else None
        feeds, run = {"x": x, "memory": memory}, lambda: layer.forward(x, memory, keep)
        back = lambda g: dict(zip(("x", "memory"), layer.backward(g)))  # noqa: E731
    else:
        feeds, keep = {"x": x}, MASKS[mask]
        run = lambda: layer.forward(x, x if kind == "self" else x.copy(), keep)  # noqa: E731

        def back(g):
            d_q, d_kv = layer.backward(g)  # d_kv may be None: d_q is then x's whole gradient
            return {"x": d_q if d_kv is None else d_q + d_kv}
    forward = replaying(layer, run, drop_rng) if dropout else run
    return Case(randomize(layer.params()), feeds, forward, back)


def sublayer_case(kind: str, norm: str) -> Case:
    cfg = config(norm=norm)
    rng = np.random.default_rng(0)
    if kind == FEED_FORWARD:
        inner = FeedForward("blocks.0.ffn", D, FF, "gelu", rng, 0.02, F64)
    else:
        inner = MultiHeadAttention(f"blocks.0.{kind}", cfg, rng, rng)
    layer = Sublayer(Module("blocks.0"), 1, kind, inner, cfg, rng)
    x, memory = inputs((B, T, D), (B, S, D))
    keep = {SELF_ATTENTION: MASKS["causal+padding"], CROSS_ATTENTION: padding_keep(S, 2)}.get(kind)
    feeds = {"x": x, "memory": memory} if kind == CROSS_ATTENTION else {"x": x}
    return Case(randomize(layer.params()), feeds,
                lambda: layer.forward(x, memory if kind == CROSS_ATTENTION else None, keep),
                lambda g: dict(zip(("x", "memory"), layer.backward(g))), BLOCK_FULL_CHECK_SIZE)


def block_case(which: str, norm: str, activation: str = "relu", breaks: bool = False,
               dropout: float = 0.0) -> Case:
    cfg = config(norm=norm, activation=activation, dropout=dropout,
                 breaks=ALL_BREAKS if breaks else BreakSwitches())
    rng, drop_rng = np.random.default_rng(0), np.random.default_rng(5)
    if which == "encoder":
        layer = EncoderBlock("enc.0", cfg, rng, drop_rng)
        (x,) = inputs((B, S, D))
        feeds, run = {"x": x}, lambda: layer.forward(x, padding_keep(S, 2))
        back = lambda g: {"x": layer.backward(g)}  # noqa: E731
    else:
        layer = DecoderBlock("dec.0", cfg, rng, drop_rng, cross=which == "decoder-cross")
        x, memory = inputs((B, T, D), (B, S, D))
        keep, src_keep = MASKS["causal+padding"], padding_keep(S, 2)
        feeds = {"x": x, "memory": memory} if layer.cross else {"x": x}
        run = lambda: layer.forward(x, keep, memory if layer.cross else None,  # noqa: E731
                                    src_keep if layer.cross else None)
        back = lambda g: dict(zip(("x", "memory"), layer.backward(g)))  # noqa: E731
    forward = replaying(layer, run, drop_rng) if dropout else run
    return Case(randomize(layer.params()), feeds, forward, back, BLOCK_FULL_CHECK_SIZE)


CASES: dict[str, Callable[[], Case]] = {
    "linear-bias": lambda: unary(Linear("fc", D, FF, rng0(), 0.02, F64)),
    "linear-nobias": lambda: unary(Linear("fc", D, FF, rng0(), 0.02, F64, bias=False)),
    "tied-output": lambda: tied_case(False),
    "tied-output-shared-with-embedding": lambda: tied_case(True),
    "token-embedding-scaled-repeated-ids": embedding_case,
    "positional-learned": lambda: unary(positional("learned")),
    "positional-learned-offset": lambda: unary(positional("learned"), offset=2),
    "positional-learned-disabled": lambda: unary(positional("learned", disabled=True)),
    "positional-sinusoidal": lambda: unary(positional("sinusoidal")),
    "activation-relu": lambda: unary(Activation("act", "relu"), relu_inputs()),
    "activation-gelu": lambda: unary(Activation("act", "gelu"), inputs((B, T, FF))[0]),
    "feedforward-relu": lambda: unary(FeedForward("ffn", D, FF, "relu", rng0(), 0.02, F64)),
    "feedforward-gelu": lambda: unary(FeedForward("ffn", D, FF, "gelu", rng0(), 0.02, F64)),
    "layernorm": lambda: unary(LayerNorm("ln", D, 1e-5, F64)),
    "dropout-train": lambda: dropout_case(training=True),
    "dropout-eval": lambda: dropout_case(training=False),
    "residual": lambda: residual_case(False),
    "residual-disabled": lambda: residual_case(True),
    **{f"mha-self-{mask}{'-breaks' if brk else ''}": (lambda m=mask, b=brk: attention_case(
        "self", m, breaks=b)) for mask in MASKS for brk in (False, True)},
    "mha-self-causal+padding-unfused": lambda: attention_case("self-unfused", "causal+padding"),
    "mha-cross-padding": lambda: attention_case("cross", "padding"),
    "mha-cross-nomask": lambda: attention_case("cross", "none"),
    "mha-cross-padding-breaks": lambda: attention_case("cross", "padding", breaks=True),
    "mha-self-causal+padding-train-dropout": lambda: attention_case("self", "causal+padding",
                                                                    dropout=0.3),
    "mha-cross-padding-train-dropout": lambda: attention_case("cross", "padding", dropout=0.3),
    **{f"sublayer-{kind}-{norm}": (lambda k=kind, n=norm: sublayer_case(k, n))
       for kind in (SELF_ATTENTION, CROSS_ATTENTION, FEED_FORWARD) for norm in ("pre", "post")},
}
BLOCK_CASES: dict[str, Callable[[], Case]] = {
    **{f"{which}-block-{norm}": (lambda w=which, n=norm: block_case(w, n))
       for which in ("encoder", "decoder", "decoder-cross") for norm in ("pre", "post")},
    "decoder-cross-block-pre-gelu-breaks": lambda: block_case("decoder-cross", "pre", "gelu",
                                                              breaks=True),
    "encoder-block-post-gelu-breaks": lambda: block_case("encoder", "post", "gelu", breaks=True),
    "decoder-cross-block-post-train-dropout": lambda: block_case("decoder-cross", "post",
                                                                 dropout=0.2),
    "encoder-block-pre-train-dropout": lambda: block_case("encoder", "pre", "gelu", dropout=0.2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_gradients_match_finite_differences(name, engine_threads):
    assert_gradients_match(CASES[name]())


@pytest.mark.parametrize("engine_threads", ["inline"], indirect=True)
@pytest.mark.parametrize("name", list(BLOCK_CASES))
def test_block_gradients_match_finite_differences(name, engine_threads):
    assert_gradients_match(BLOCK_CASES[name]())


def test_dropout_backward_is_upstream_times_the_forward_mask():
    layer = Dropout("drop", 0.3, np.random.default_rng(5))
    x, upstream = inputs((B, T, D), (B, T, D))
    out = layer.forward(x)
    scaled = layer.keep_scaled.copy()
    assert set(np.unique(scaled)) == {0.0, 1 / (1 - 0.3)}
    np.testing.assert_array_equal(out, x * scaled)
    np.testing.assert_array_equal(layer.backward(upstream), upstream * scaled)


def test_the_check_catches_a_wrong_backward(monkeypatch):
    """A Linear whose backward returns 1.01x the input gradient (or adds 1.01x the weight
    gradient) fails the check, which names the tensor; the true backward passes."""
    layer = Linear("fc", D, FF, rng0(), 0.02, F64)
    case, true_backward = unary(layer), layer.backward
    assert max(gradient_errors(case).values()) <= TOL

    monkeypatch.setattr(layer, "backward", lambda g: 1.01 * true_backward(g))
    errors = gradient_errors(case)
    assert errors["d_x"] > 1e-3 and errors["fc.w"] <= TOL and errors["fc.b"] <= TOL
    with pytest.raises(AssertionError, match="d_x"):
        assert_gradients_match(case)

    def wrong_weight_grad(g):
        d_x = true_backward(g)
        layer.w.grad *= 1.01  # gradient_errors zeroes the grads before calling backward
        return d_x
    monkeypatch.setattr(layer, "backward", wrong_weight_grad)
    with pytest.raises(AssertionError, match=r"fc\.w \d"):
        assert_gradients_match(case)


def test_a_query_that_may_see_no_key_attends_to_nothing(engine_threads):
    """Left padding under a causal mask: query 0 of row 1 sees only key 0, a pad. Its weights
    are zero (not uniform over every key, the future included), so its context is zero and
    the layer's output there is o_proj's bias, whatever the other positions hold."""
    layer = MultiHeadAttention("attn", config(), rng0(), rng0())
    randomize(layer.params())
    x, other = inputs((B, T, D), (B, T, D), seed=7)
    changed = x.copy()
    changed[:, 1:] = other[:, 1:]  # every later position differs
    keep = MASKS["causal+left-padding"]
    for batch in (x, changed):
        out = layer.forward(batch, batch, keep)
        np.testing.assert_array_equal(out[1, 0], layer.o_proj.b.data)
        assert np.array_equal(layer._saved["weights"][1, :, 0], np.zeros((H, T)))
