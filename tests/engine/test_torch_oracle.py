"""Both engine models against an independent PyTorch implementation on identical weights.

In float64, logits, loss and every parameter gradient must agree to 1e-6 relative error, and
ten Adam steps must give the same losses. PyTorch autograd is the oracle of the engine's
hand-written backward; `torch_reference.py` is written from the spec, not from the engine.

Relative error of a tensor: max|engine - torch| / max(max|torch|, 1e-8) (a per-tensor scale,
so a gradient element that is ~0 in both does not divide rounding noise by nothing; the floor
covers the key biases, whose gradient is exactly zero in exact arithmetic because softmax
ignores a shift shared by all keys). The element-wise error (engine.trace.gradcheck.rel_error) is
reported in failure messages too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip(  # ImportError too: a broken torch install skips, not errors
    "torch", reason="PyTorch is the oracle of these tests; install it with `pip install -e .[test]`",
    exc_type=ImportError)

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model  # noqa: E402
from engine.trace.gradcheck import rel_error  # noqa: E402
from engine.maths.loss import CrossEntropyLoss  # noqa: E402
from engine.maths.optim import Adam  # noqa: E402
from torch_reference import (build_torch_model, cross_entropy, engine_grads,  # noqa: E402
                             load_from_engine, name_map)
from engine_threads import engine_threads  # noqa: E402,F401  (a fixture)

# Every test here runs inline and with operations split over two threads (conftest.py).
pytestmark = pytest.mark.usefixtures("engine_threads")

TOL = 1e-6  # float64 logits, loss, gradients
ADAM_TOL = 1e-5  # losses over ten optimizer steps
FLOOR = 1e-8  # scale below which a tensor counts as zero: its error is then absolute
PAD, BOS = 0, 1
V, D, H, FF, LAYERS, MAX_LEN = 11, 16, 4, 24, 2, 12
B, S, T = 3, 7, 6


@dataclass(frozen=True)
class Case:
    """One architecture combination; `id` names it in test output."""

    id: str
    kind: str  # "encoder_decoder" | "decoder_only"
    norm: str = "post"
    activation: str = "relu"
    positional: str = "sinusoidal"
    scale_embedding: bool = True
    tie_embeddings: bool = False
    pad_id: int | None = PAD
    smoothing: float = 0.0


CASES = [
    Case("encdec-post-relu-sinusoidal-padded-smooth0.1", "encoder_decoder", smoothing=0.1),
    Case("dec-pre-gelu-learned-tied", "decoder_only", "pre", "gelu", "learned", tie_embeddings=True),
    Case("encdec-pre-gelu-learned-unscaled-tied", "encoder_decoder", "pre", "gelu", "learned",
         scale_embedding=False, tie_embeddings=True, smoothing=0.2),
    Case("encdec-post-relu-sinusoidal-unscaled-nopad", "encoder_decoder", scale_embedding=False,
         pad_id=None),
    Case("dec-post-relu-sinusoidal-untied", "decoder_only", smoothing=0.1),
    Case("dec-pre-relu-sinusoidal-unscaled-untied", "decoder_only", "pre", scale_embedding=False),
    Case("dec-post-gelu-learned-tied", "decoder_only", "post", "gelu", "learned",
         tie_embeddings=True),
]


def make_config(case: Case, dtype: str = "float64"):
    cls = EncoderDecoderConfig if case.kind == "encoder_decoder" else DecoderOnlyConfig
    return cls(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_layers=LAYERS, max_len=MAX_LEN,
               dropout=0.0, activation=case.activation, norm=case.norm,
               positional=case.positional, scale_embedding=case.scale_embedding,
               tie_embeddings=case.tie_embeddings, pad_id=case.pad_id, dtype=dtype, seed=3)


def random_state(model, seed: int) -> dict[str, np.ndarray]:
    """Weights far from the engine's init: LayerNorm gains != 1, biases != 0, so every
    gradient is exercised (with gamma = 1 and beta = 0 a wrong LayerNorm can still pass)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, value in model.state_dict().items():
        noise = rng.standard_normal(value.shape)
        if name.endswith(".w"):
            state[name] = noise / np.sqrt(value.shape[0])  # (in, out): unit-variance outputs
        elif name.endswith(".gamma"):
            state[name] = 1.0 + 0.2 * noise
        elif name.endswith((".b", ".beta")):
            state[name] = 0.2 * noise
        else:  # token and position tables
            state[name] = 0.5 * noise
    return state


def make_batch(case: Case, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """(model inputs, targets). With a pad id, rows end in padding of different lengths, in
    the source (keys masked) and in the target (keys masked, loss ignores them)."""
    low = 0 if case.pad_id is None else 2  # real tokens never collide with PAD or BOS
    seq = rng.integers(low, V, size=(B, T + 1))  # (B, T+1) BOS + T target tokens
    seq[:, 0] = BOS
    src = rng.integers(low, V, size=(B, S))
    if case.pad_id is not None:
        for row, (src_len, tgt_len) in enumerate([(S, T + 1), (S - 2, T - 1), (S - 4, T - 2)]):
            src[row, src_len:] = PAD
            seq[row, tgt_len:] = PAD
    inputs, targets = seq[:, :-1], seq[:, 1:]  # (B,T) each: predict the next token
    if case.kind == "encoder_decoder":
        return (src, inputs), targets
    return (inputs,), targets


def tensor_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(max|b|, FLOOR): 0 is identical; robust to elements ~0 in both."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), FLOOR))


def describe(errors: dict[str, tuple[float, float]], limit: int = 8) -> str:
    worst = sorted(errors.items(), key=lambda kv: -kv[1][0])[:limit]
    return "\n".join(f"  {name}: tensor {t:.2e}  element-wise {e:.2e}" for name, (t, e) in worst)


@dataclass
class Run:
    logits: np.ndarray
    loss: float
    grads: dict[str, np.ndarray]


def run_engine(model, inputs, targets, smoothing, pad_id) -> Run:
    model.packed.zero_grad()
    logits = model.forward(*inputs)  # (B,T,V)
    loss_fn = CrossEntropyLoss(pad_id, smoothing)
    loss = loss_fn.forward(logits, targets)
    model.backward(loss_fn.backward())
    return Run(logits.copy(), loss, {p.name: p.grad.copy() for p in model.params()})


def run_torch(tmodel, inputs, targets, smoothing, pad_id) -> Run:
    tmodel.zero_grad(set_to_none=True)
    logits = tmodel(*(torch.as_tensor(x) for x in inputs))
    loss = cross_entropy(logits, torch.as_tensor(targets), pad_id, smoothing)
    loss.backward()
    return Run(logits.detach().numpy().copy(), loss.item(), engine_grads(tmodel))


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def pair(request, engine_threads):
    """(case, engine run, torch run) on the same weights and batch, inline and split."""
    case = request.param
    model = build_model(make_config(case))
    state = random_state(model, seed=11)
    model.load_state_dict(state)
    model.eval()
    tmodel = build_torch_model(model.config, torch.float64)
    load_from_engine(tmodel, model.state_dict())  # asserts every engine name is used once
    tmodel.eval()
    inputs, targets = make_batch(case, np.random.default_rng(5))
    ours = run_engine(model, inputs, targets, case.smoothing, case.pad_id)
    theirs = run_torch(tmodel, inputs, targets, case.smoothing, case.pad_id)
    return case, ours, theirs, inputs, targets


def test_logits_match(pair):
    _, ours, theirs, _, _ = pair
    err = tensor_rel_err(ours.logits, theirs.logits)
    assert err <= TOL, f"logits: tensor rel err {err:.2e}, element-wise " \
                       f"{rel_error(ours.logits, theirs.logits).max():.2e}"


def test_loss_matches(pair):
    _, ours, theirs, _, _ = pair
    assert abs(ours.loss - theirs.loss) <= TOL * abs(theirs.loss), (ours.loss, theirs.loss)


def test_every_parameter_gradient_matches(pair):
    case, ours, theirs, _, _ = pair
    assert set(ours.grads) == set(theirs.grads)
    errors = {name: (tensor_rel_err(ours.grads[name], theirs.grads[name]),
                     float(rel_error(ours.grads[name], theirs.grads[name]).max()))
              for name in theirs.grads}
    bad = {name: e for name, e in errors.items() if e[0] > TOL}
    assert not bad, f"{len(bad)} gradient(s) differ from torch ({case.id}):\n{describe(bad)}"
    # Gradients that are all zero would agree trivially: every one must carry signal, except
    # the key biases, which must be zero (up to rounding) in both.
    key_bias = {name for name in theirs.grads if name.endswith("k_proj.b")}
    dead = [name for name, g in theirs.grads.items()
            if name not in key_bias and np.abs(g).max() < 1e3 * FLOOR]
    assert not dead, f"these gradients are ~zero in torch, the check proves nothing: {dead}"
    for name in key_bias:
        assert np.abs(ours.grads[name]).max() < 1e-12, f"{name} should be ~0: softmax is shift-invariant"


def test_embedding_gradient_reaches_exactly_the_used_rows(pair):
    """The input path ends in a scatter-add into tok_emb. Rows of tokens read where they reach
    the loss get gradient; rows never read get none, and neither does the pad row: padding is
    masked as a key and ignored as a target, so it must be invisible. (Tied decoder tables also
    get the output projection's gradient in every row, so only the encoder's is checked then.)"""
    case, ours, _, inputs, targets = pair
    counted = np.ones(targets.shape, bool) if case.pad_id is None else targets != case.pad_id
    if case.kind == "decoder_only":
        stacks = [("", inputs[0], counted)]
    else:
        real_src = np.ones(inputs[0].shape, bool) if case.pad_id is None else inputs[0] != case.pad_id
        stacks = [("encoder.", inputs[0], real_src), ("decoder.", inputs[1], counted)]
    for prefix, ids, reaches_loss in stacks:
        grad = ours.grads[f"{prefix}tok_emb.weight"]  # (V, D)
        live = np.zeros(V, dtype=bool)
        live[np.unique(ids[reaches_loss])] = True
        assert np.all(np.abs(grad[live]).max(axis=1) > 0), f"{prefix}tok_emb: a used row has no grad"
        if case.tie_embeddings and prefix != "encoder.":
            continue
        silent = ~np.isin(np.arange(V), ids)  # never read
        if case.pad_id is not None:
            silent[case.pad_id] = True
        assert np.all(grad[silent] == 0), f"{prefix}tok_emb: an unread or pad row got a gradient"


def test_torch_oracle_is_sensitive_to_a_wrong_weight():
    """The comparison can fail: one perturbed weight moves the logits far beyond TOL."""
    case = CASES[0]
    model = build_model(make_config(case))
    model.load_state_dict(random_state(model, seed=11))
    state = model.state_dict()
    state["decoder.blocks.1.cross_attn.v_proj.w"][2, 3] += 1e-3
    tmodel = build_torch_model(model.config, torch.float64)
    load_from_engine(tmodel, state)
    inputs, targets = make_batch(case, np.random.default_rng(5))
    ours = run_engine(model.eval(), inputs, targets, 0.0, case.pad_id)
    theirs = run_torch(tmodel.eval(), inputs, targets, 0.0, case.pad_id)
    assert tensor_rel_err(ours.logits, theirs.logits) > 100 * TOL


def test_load_from_engine_rejects_a_missing_name():
    case = CASES[1]
    model = build_model(make_config(case))
    state = model.state_dict()
    del state["blocks.0.ffn.fc1.b"]
    with pytest.raises(AssertionError, match="fc1.b"):
        load_from_engine(build_torch_model(model.config), state)


# -- ten optimizer steps ------------------------------------------------------------------------
ADAM_STEPS, ADAM_LR = 10, 1e-2


@pytest.mark.parametrize("case", [CASES[0], CASES[1]], ids=lambda c: c.id)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ten_adam_steps_give_the_same_losses(case, dtype):
    """engine.maths.optim.Adam on model.packed vs torch.optim.Adam (default betas and eps), a new
    batch each step: the loss trajectories must agree, and so must the final weights."""
    model = build_model(make_config(case, dtype))
    model.load_state_dict(random_state(model, seed=12))
    model.train()  # dropout is 0: train mode must be the same computation
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    tmodel = build_torch_model(model.config, tdtype)
    load_from_engine(tmodel, model.state_dict())
    tmodel.train()
    ours_opt = Adam(model.packed, lr=ADAM_LR)
    theirs_opt = torch.optim.Adam(tmodel.parameters(), lr=ADAM_LR)
    rng = np.random.default_rng(13)
    ours_losses, theirs_losses = [], []
    for _ in range(ADAM_STEPS):
        inputs, targets = make_batch(case, rng)
        ours_losses.append(run_engine(model, inputs, targets, case.smoothing, case.pad_id).loss)
        ours_opt.step()
        theirs_losses.append(run_torch(tmodel, inputs, targets, case.smoothing, case.pad_id).loss)
        theirs_opt.step()
    ours_losses, theirs_losses = np.array(ours_losses), np.array(theirs_losses)
    assert ours_losses[-1] < ours_losses[0], "ten Adam steps should lower the loss"
    diff = np.abs(ours_losses - theirs_losses) / np.abs(theirs_losses)
    assert diff.max() <= ADAM_TOL, f"loss trajectories differ: engine {ours_losses}, torch {theirs_losses}"
    if dtype == "float64":
        final = {name: p.detach().numpy() for name, p in _named_engine_weights(tmodel).items()}
        errors = {p.name: tensor_rel_err(p.data, final[p.name]) for p in model.params()}
        worst = max(errors, key=errors.get)
        assert errors[worst] <= ADAM_TOL, f"after {ADAM_STEPS} steps {worst} differs by {errors[worst]:.2e}"


def _named_engine_weights(tmodel) -> dict[str, "torch.Tensor"]:
    """Torch weights under engine names and layout ((in, out) for linear weights)."""
    return {name: (p.T if transpose else p) for name, (p, transpose) in name_map(tmodel).items()}


# -- queries that may see no key -----------------------------------------------------------------
def left_padded_batch(case: Case) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """make_batch's tokens moved to the right end of each row: the pads come first, so under
    the causal mask a pad query sees only pad keys (none at all), and its next token is real."""
    inputs, targets = make_batch(case, np.random.default_rng(6))
    def shift(ids):
        return np.stack([np.concatenate([row[row == PAD], row[row != PAD]]) for row in ids])
    seq = shift(np.concatenate([inputs[-1], targets[:, -1:]], axis=1))  # (B, T+1)
    inputs = (*(shift(x) for x in inputs[:-1]), seq[:, :-1])
    return inputs, seq[:, 1:]


@pytest.mark.parametrize("case", [CASES[1], CASES[0]], ids=lambda c: c.id)
def test_queries_that_see_no_key_attend_to_nothing_in_both(case):
    """A left pad under a causal mask may see no key: the engine gives it zero weights (not a
    uniform row over every key, the future included); the oracle must define it the same, and
    the logits of those rows and every gradient must then agree."""
    model = build_model(make_config(case))
    model.load_state_dict(random_state(model, seed=11))
    tmodel = build_torch_model(model.config, torch.float64)
    load_from_engine(tmodel, model.state_dict())
    inputs, targets = left_padded_batch(case)
    assert (targets[inputs[-1] == PAD] != PAD).any(), "no pad query whose prediction counts"
    ours = run_engine(model.eval(), inputs, targets, case.smoothing, case.pad_id)
    theirs = run_torch(tmodel.eval(), inputs, targets, case.smoothing, case.pad_id)
    assert tensor_rel_err(ours.logits, theirs.logits) <= TOL
    errors = {name: tensor_rel_err(ours.grads[name], theirs.grads[name]) for name in theirs.grads}
    bad = {name: e for name, e in errors.items() if e > TOL}
    assert not bad, f"gradients differ with left padding: {bad}"
