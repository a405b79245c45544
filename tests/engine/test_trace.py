"""Recording: one forward + loss + backward on one batch gives a Trace a viewer can replay.

What is proved here:
- the trace holds every op the issue lists, for every layer, in the order it runs: forward in
  order, backward as the mirror in the order the hand-written backward really runs it;
- every event carries what it read and wrote (copies), the upstream gradient and the gradient
  of each input and parameter, and the chained values agree (one op's output is the next one's
  input, in both passes);
- the traced values are exactly (bit for bit) those of an untraced pass, and the parameter
  gradients summed from the backward events are exactly what a plain backward leaves in the
  parameters (a tied embedding gets two contributions);
(tokens, loss, statistics and the layer tree: test_trace_views.py)

Shapes: B batch, S source length, T target length, D model width, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model, recording
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import BACKWARD, FORWARD
from engine.trace.trace import Batch, record_step
from engine_threads import engine_threads  # noqa: E402,F401  (a fixture)

VOCAB = ["<pad>", "<s>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
PAD = 0
SRC = np.array([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]])  # (B=2, S=5); row 1 ends in padding
TGT_IN = np.array([[1, 6, 5, 4], [1, 9, 8, 0]])  # (B, T=4): BOS + target, padded
TGT_OUT = np.array([[6, 5, 4, 3], [9, 8, 7, 0]])  # (B, T) the next token at each place


def words(ids: np.ndarray) -> list[list[str]]:
    return [[VOCAB[i] for i in row] for row in ids]


@dataclass(frozen=True)
class Variant:
    id: str
    kind: str = "encoder_decoder"  # or "decoder_only"
    norm: str = "post"
    activation: str = "relu"
    positional: str = "sinusoidal"
    tie_embeddings: bool = False
    pad_id: int | None = PAD
    dropout: float = 0.0


VARIANTS = [
    Variant("encdec-post-relu-dropout", dropout=0.1),
    Variant("encdec-pre-gelu-learned-tied", norm="pre", activation="gelu", positional="learned",
            tie_embeddings=True),
    Variant("encdec-nopad", pad_id=None),
    Variant("dec-pre-gelu-dropout", kind="decoder_only", norm="pre", activation="gelu",
            dropout=0.1),
    Variant("dec-post-relu-tied", kind="decoder_only", tie_embeddings=True),
]


def build(v: Variant, dtype: str = "float32"):
    cls = EncoderDecoderConfig if v.kind == "encoder_decoder" else DecoderOnlyConfig
    return build_model(cls(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_layers=2,
                           max_len=16, dropout=v.dropout, activation=v.activation, norm=v.norm,
                           positional=v.positional, tie_embeddings=v.tie_embeddings,
                           pad_id=v.pad_id, dtype=dtype, seed=1))


def batch_for(model) -> Batch:
    src = SRC if model.config.kind == "encoder_decoder" else None
    return Batch(src, TGT_IN, TGT_OUT)


def record(model, smoothing: float = 0.1):
    batch = batch_for(model)
    loss_fn = CrossEntropyLoss(model.config.pad_id, smoothing)
    src_words = None if batch.src is None else words(SRC)
    return record_step(model, loss_fn, batch, src_words, words(TGT_IN), words(TGT_OUT))


def plain_step(model, smoothing: float = 0.1):
    """The same step with nothing recording: (logits, loss, {param: grad})."""
    batch = batch_for(model)
    loss_fn = CrossEntropyLoss(model.config.pad_id, smoothing)
    model.zero_grad()
    inputs = (batch.tgt_in,) if batch.src is None else (batch.src, batch.tgt_in)
    logits = model.forward(*inputs)
    loss = loss_fn.forward(logits, batch.tgt_out)
    model.backward(loss_fn.backward())
    return logits.copy(), loss, {p.name: p.grad.copy() for p in model.params()}


# -- the order the issue asks for, written out independently of the engine ---------------------
def _attention(path: str, masked: bool) -> list[tuple[str, str]]:
    ops = [(f"{path}.q_proj", "linear"), (f"{path}.k_proj", "linear"),
           (f"{path}.v_proj", "linear"), (f"{path}.split_heads", "split_heads"),
           (f"{path}.scores", "scores"), (f"{path}.scale", "scale")]
    ops += [(f"{path}.mask", "mask")] if masked else []
    return ops + [(f"{path}.softmax", "softmax"), (f"{path}.attn_drop", "dropout"),
                  (f"{path}.attend", "attend"), (f"{path}.merge_heads", "merge_heads"),
                  (f"{path}.o_proj", "linear")]


def _attention_backward(path: str, masked: bool) -> list[tuple[str, str]]:
    ops = [(f"{path}.o_proj", "linear"), (f"{path}.merge_heads", "merge_heads"),
           (f"{path}.attend", "attend"), (f"{path}.attn_drop", "dropout"),
           (f"{path}.softmax", "softmax")]
    ops += [(f"{path}.mask", "mask")] if masked else []
    # q, k, v projections are independent; their backward runs in q, k, v order
    return ops + [(f"{path}.scale", "scale"), (f"{path}.scores", "scores"),
                  (f"{path}.split_heads", "split_heads"), (f"{path}.q_proj", "linear"),
                  (f"{path}.k_proj", "linear"), (f"{path}.v_proj", "linear")]


def _ffn(path: str, act: str, backward: bool = False) -> list[tuple[str, str]]:
    ops = [(f"{path}.fc1", "linear"), (f"{path}.act", act), (f"{path}.fc2", "linear")]
    return ops[::-1] if backward else ops


def _sublayer(block: str, i: int, inner: list, pre: bool, backward: bool = False) -> list:
    ln = [(f"{block}.ln{i}", "layernorm")]
    add = [(f"{block}.drop{i}", "dropout"), (f"{block}.residual{i}", "residual")]
    if backward:
        add = add[::-1]
        return add + inner + ln if pre else ln + add + inner
    return ln + inner + add if pre else inner + add + ln


def _embed(prefix: str, positional: str, backward: bool = False) -> list[tuple[str, str]]:
    p = f"{prefix}." if prefix else ""
    pos = "pos_emb" if positional == "learned" else "pos_enc"
    ops = [(f"{p}tok_emb", "embedding"), (f"{p}{pos}", "positional"), (f"{p}emb_drop", "dropout")]
    return ops[::-1] if backward else ops


def _block(path: str, v: Variant, cross: bool, self_masked: bool, cross_masked: bool,
           backward: bool = False) -> list:
    pre, act = v.norm == "pre", v.activation
    attn = _attention_backward if backward else _attention
    subs = [_sublayer(path, 1, attn(f"{path}.self_attn", self_masked), pre, backward)]
    if cross:
        subs.append(_sublayer(path, 2, attn(f"{path}.cross_attn", cross_masked), pre, backward))
    subs.append(_sublayer(path, len(subs) + 1, _ffn(f"{path}.ffn", act, backward), pre,
                          backward))
    return [op for sub in (subs[::-1] if backward else subs) for op in sub]


def expected_ops(v: Variant, n_layers: int = 2) -> tuple[list, list]:
    """(forward, backward) lists of (path, op) for a model of variant `v`."""
    pre, padded = v.norm == "pre", v.pad_id is not None
    head = [("lm_head", "linear")]
    fwd, bwd = [], []
    if v.kind == "encoder_decoder":
        enc = [f"encoder.blocks.{i}" for i in range(n_layers)]
        dec = [f"decoder.blocks.{i}" for i in range(n_layers)]
        enc_ln = [("encoder.ln_f", "layernorm")] if pre else []
        dec_ln = [("decoder.ln_f", "layernorm")] if pre else []
        fwd += _embed("encoder", v.positional)
        for b in enc:  # encoder self-attention is masked only where the source has padding
            fwd += _block(b, v, cross=False, self_masked=padded, cross_masked=False)
        fwd += enc_ln + _embed("decoder", v.positional)
        for b in dec:  # decoder self-attention is always masked (causal)
            fwd += _block(b, v, cross=True, self_masked=True, cross_masked=padded)
        fwd += dec_ln + head
        bwd += head + dec_ln
        for b in dec[::-1]:
            bwd += _block(b, v, True, True, padded, backward=True)
        bwd += _embed("decoder", v.positional, backward=True) + enc_ln
        for b in enc[::-1]:
            bwd += _block(b, v, False, padded, False, backward=True)
        bwd += _embed("encoder", v.positional, backward=True)
    else:
        blocks = [f"blocks.{i}" for i in range(n_layers)]
        ln_f = [("ln_f", "layernorm")] if pre else []
        fwd += _embed("", v.positional)
        for b in blocks:
            fwd += _block(b, v, cross=False, self_masked=True, cross_masked=False)
        fwd += ln_f + head
        bwd += head + ln_f
        for b in blocks[::-1]:
            bwd += _block(b, v, False, True, False, backward=True)
        bwd += _embed("", v.positional, backward=True)
    fwd += [("loss.softmax", "output_softmax"), ("loss.cross_entropy", "cross_entropy")]
    bwd = [("loss.cross_entropy", "cross_entropy")] + bwd  # softmax + CE: one backward, p - q
    return fwd, bwd


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v.id)
def traced(request):
    v = request.param
    model = build(v)
    return v, model, record(model)


# -- order and granularity -------------------------------------------------------------------------
def test_every_op_of_every_layer_in_order(traced):
    v, _, trace = traced
    forward, backward = expected_ops(v)
    got_forward = [(e.path, e.op) for e in trace.events if e.phase == FORWARD]
    got_backward = [(e.path, e.op) for e in trace.events if e.phase == BACKWARD]
    assert got_forward == forward
    assert got_backward == backward


def test_events_are_indexed_forward_first_and_keyed_to_formulas(traced):
    _, _, trace = traced
    assert [e.index for e in trace.events] == list(range(len(trace)))
    phases = [e.phase for e in trace.events]
    n_forward = phases.count(FORWARD)
    assert phases == [FORWARD] * n_forward + [BACKWARD] * (len(phases) - n_forward)
    assert trace.first_backward == n_forward
    formulas = {}
    for e in trace.events:
        if e.phase == FORWARD:
            expected = "logits" if e.path == "lm_head" else e.op
            assert e.formula == expected, (e.path, e.formula)
            formulas[e.path] = e.formula
        else:
            assert e.formula == f"{formulas[e.path]}.backward", (e.path, e.formula)


def test_every_op_the_issue_lists_is_recorded(traced):
    v, _, trace = traced
    ops = {e.op for e in trace.events}
    required = {"embedding", "positional", "linear", "split_heads", "scores", "scale",
                "softmax", "dropout", "attend", "merge_heads", "residual", "layernorm",
                v.activation, "output_softmax", "cross_entropy", "mask"}
    assert required <= ops, required - ops
    linears = {e.path.rsplit(".", 1)[-1] for e in trace.events if e.op == "linear"}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2", "lm_head"} <= linears


# Per op: (upstream gradient names, gradient names of its inputs) a backward event must carry.
BACKWARD_TENSORS = {
    "linear": ({"d_out"}, {"d_x"}), "layernorm": ({"d_out"}, {"d_x"}),
    "residual": ({"d_out"}, {"d_x", "d_fx"}), "dropout": ({"d_out"}, {"d_x"}),
    "positional": ({"d_out"}, {"d_x"}), "embedding": ({"d_out"}, set()),
    "relu": ({"d_out"}, {"d_x"}), "gelu": ({"d_out"}, {"d_x"}),
    "merge_heads": ({"d_merged"}, {"d_context"}), "attend": ({"d_context"}, {"d_weights", "d_v"}),
    "softmax": ({"d_weights"}, {"d_masked"}), "mask": ({"d_masked"}, {"d_scaled"}),
    "scale": ({"d_scaled"}, {"d_scores"}), "scores": ({"d_scores"}, {"d_q", "d_k"}),
    "split_heads": ({"d_q_heads", "d_k_heads", "d_v_heads"}, {"d_q", "d_k", "d_v"}),
    "cross_entropy": (set(), {"d_logits"}),
}


def test_backward_events_carry_upstream_input_and_parameter_gradients(traced):
    _, model, trace = traced
    shapes = {p.name: p.data.shape for p in model.params()}
    for e in trace.events:
        if e.phase != BACKWARD:
            continue
        upstream, inputs = BACKWARD_TENSORS[e.op]
        assert upstream | inputs <= set(e.tensors), (e.path, sorted(e.tensors))
        for local, name in e.attrs.get("params", {}).items():
            assert e.tensors[f"grad.{local}"].shape == shapes[name], (e.path, local)


def test_forward_events_chain_and_compute_what_their_formula_says(traced):
    v, model, trace = traced
    at = {e.path: e.tensors for e in trace.events if e.phase == FORWARD}
    attn = "decoder.blocks.1.cross_attn" if v.kind == "encoder_decoder" else "blocks.1.self_attn"
    a = {name: at[f"{attn}.{name}"] for name in ("q_proj", "k_proj", "split_heads", "scores",
                                                  "scale", "softmax", "attn_drop", "attend",
                                                  "merge_heads", "o_proj")}
    assert np.array_equal(a["q_proj"]["out"], a["split_heads"]["q"])
    assert np.array_equal(a["k_proj"]["out"], a["split_heads"]["k"])
    assert np.array_equal(a["split_heads"]["q_heads"], a["scores"]["q"])
    q, k = a["scores"]["q"], a["scores"]["k"]  # (B,H,T,K), (B,H,S,K)
    np.testing.assert_allclose(a["scores"]["scores"], q @ k.transpose(0, 1, 3, 2), rtol=1e-5,
                               atol=1e-6)
    assert np.array_equal(a["scores"]["scores"], a["scale"]["scores"])
    np.testing.assert_allclose(a["scale"]["scaled"], a["scale"]["scores"] / np.sqrt(8),
                               rtol=1e-6)
    masked = at.get(f"{attn}.mask", {"masked": a["scale"]["scaled"]})["masked"]
    assert np.array_equal(masked, a["softmax"]["masked"])
    np.testing.assert_allclose(a["softmax"]["weights"].sum(-1), 1.0, rtol=1e-6)
    assert np.array_equal(a["softmax"]["weights"], a["attn_drop"]["x"])
    assert np.array_equal(a["attn_drop"]["out"], a["attend"]["weights"])
    assert np.array_equal(a["attend"]["context"], a["merge_heads"]["context"])
    assert np.array_equal(a["merge_heads"]["merged"], a["o_proj"]["x"])
    residual = next(e.tensors for e in trace.events if e.op == "residual")
    assert np.array_equal(residual["out"], residual["x"] + residual["fx"])
    logits = at["lm_head"]["out"]
    assert np.array_equal(logits, at["loss.softmax"]["logits"])
    assert logits.shape == (2, 4, len(VOCAB))
    assert float(at["loss.cross_entropy"]["loss"]) == trace.loss


def test_backward_events_chain_in_the_attention_and_into_the_model():
    """Each backward step's input gradient is the next step's upstream gradient."""
    model = build(Variant("plain"))
    trace = record(model)
    at = {e.path: e.tensors for e in trace.events if e.phase == BACKWARD}
    p = "decoder.blocks.0.self_attn"
    chain = [("o_proj", "d_x", "merge_heads", "d_merged"),
             ("merge_heads", "d_context", "attend", "d_context"),
             ("attend", "d_weights", "attn_drop", "d_out"),
             ("attn_drop", "d_x", "softmax", "d_weights"),
             ("softmax", "d_masked", "mask", "d_masked"),
             ("mask", "d_scaled", "scale", "d_scaled"),
             ("scale", "d_scores", "scores", "d_scores"),
             ("scores", "d_q", "split_heads", "d_q_heads"),
             ("scores", "d_k", "split_heads", "d_k_heads"),
             ("attend", "d_v", "split_heads", "d_v_heads"),
             ("split_heads", "d_q", "q_proj", "d_out"),
             ("split_heads", "d_k", "k_proj", "d_out"),
             ("split_heads", "d_v", "v_proj", "d_out")]
    for src, src_name, dst, dst_name in chain:
        assert np.array_equal(at[f"{p}.{src}"][src_name], at[f"{p}.{dst}"][dst_name]), (src, dst)
    assert np.array_equal(at["loss.cross_entropy"]["d_logits"], at["lm_head"]["d_out"])
    # masked positions (here the future: query 0 may not see key 1) pass no gradient back
    keep = next(e for e in trace.events if e.path == f"{p}.mask").tensors["keep"]
    d_scaled = at[f"{p}.mask"]["d_scaled"]
    assert not np.broadcast_to(keep, d_scaled.shape)[0, 0, 0, 1]
    assert np.all(d_scaled[~np.broadcast_to(keep, d_scaled.shape)] == 0)


# -- traced == untraced ----------------------------------------------------------------------------
@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.id)
def test_traced_values_are_exactly_the_untraced_ones(v, engine_threads):
    """Two identical models (same seed, so the same dropout draws): one records, one does not.
    Logits, loss, probabilities and every gradient must agree bit for bit, in float32, with
    operations inline and split over threads (the recorded path is unsplit in places)."""
    traced_model, plain_model = build(v), build(v)
    trace = record(traced_model)
    logits, loss, grads = plain_step(plain_model)
    forward = {e.path: e for e in trace.events if e.phase == FORWARD}
    assert forward["lm_head"].tensors["out"].dtype == np.float32
    assert np.array_equal(forward["lm_head"].tensors["out"], logits)
    assert trace.loss == loss
    from_trace = trace.param_grads()
    assert set(from_trace) == set(grads)
    unequal = [name for name in grads if not np.array_equal(from_trace[name], grads[name])]
    assert not unequal, f"traced gradients differ from untraced: {unequal}"
    left_in_model = [p.name for p in traced_model.params()
                     if not np.array_equal(p.grad, grads[p.name])]
    assert not left_in_model, f"recording changed the gradients left in: {left_in_model}"
    assert any(np.any(g != 0) for g in grads.values())


def test_backward_event_gradients_are_the_ones_a_plain_backward_leaves():
    """trace.param_grads() sums the backward events; the model's .grad after record_step (which
    zeroes stale gradients first) holds the same arrays."""
    model = build(Variant("plain"))
    for p in model.params():
        p.grad[...] = 7.0  # stale gradients from an earlier step must not leak in
    trace = record(model)
    from_trace = trace.param_grads()
    assert set(from_trace) == {p.name for p in model.params()}
    for p in model.params():
        assert np.array_equal(from_trace[p.name], p.grad), p.name
    contributions = [e for e in trace.events if e.phase == BACKWARD
                     and "encoder.blocks.1.ffn.fc1.w" in e.attrs.get("params", {}).values()]
    assert len(contributions) == 1 and contributions[0].path == "encoder.blocks.1.ffn.fc1"


def test_tied_embedding_gets_two_contributions():
    model = build(Variant("tied", tie_embeddings=True))
    trace = record(model)
    name = "decoder.tok_emb.weight"
    events = [e for e in trace.events if e.phase == BACKWARD
              and name in e.attrs.get("params", {}).values()]
    assert [(e.path, e.op) for e in events] == [("lm_head", "linear"),
                                                ("decoder.tok_emb", "embedding")]
    head, lookup = events[0].tensors["grad.embedding"], events[1].tensors["grad.weight"]
    assert np.any(head != 0) and np.any(lookup != 0)
    grad = {p.name: p.grad for p in model.params()}[name]
    assert np.array_equal(trace.param_grads()[name], head + lookup)
    assert np.array_equal(trace.param_grads()[name], grad)
    assert not np.array_equal(grad, head) and not np.array_equal(grad, lookup)


def test_recorded_tensors_are_copies_not_live_buffers():
    model = build(Variant("plain"))
    trace = record(model)
    params = [p.data for p in model.params()] + [p.grad for p in model.params()]
    for e in trace.events:
        for name, tensor in e.tensors.items():
            assert not any(np.shares_memory(tensor, buf) for buf in params), (e.path, name)
    snapshot = {(e.index, n): t.copy() for e in trace.events for n, t in e.tensors.items()}
    for p in model.params():  # a training step and another pass must not touch the trace
        p.data -= 0.1 * p.grad
    plain_step(model)
    changed = [key for key, value in snapshot.items()
               if not np.array_equal(trace.events[key[0]].tensors[key[1]], value, equal_nan=True)]
    assert not changed


def test_recording_is_off_by_default_and_scoped():
    model = build(Variant("plain"))
    with recording() as rec:
        pass
    model.forward(SRC, TGT_IN)
    assert rec.events == []
    with recording() as rec:
        model.forward(SRC, TGT_IN)
    assert rec.events and rec.events[0].path == "encoder.tok_emb"


def _memory_of(tensor: np.ndarray) -> np.ndarray:
    """The array that owns a tensor's memory (itself, or the base of a view)."""
    while isinstance(tensor.base, np.ndarray):
        tensor = tensor.base
    return tensor


def test_each_live_array_is_copied_once_per_step():
    """One op's output is the next op's input, and a weight is named by several events: the
    trace holds one copy of each, shared by every event that names it."""
    model = build(Variant("dec", kind="decoder_only", norm="pre", activation="gelu"))
    trace = record(model)
    at = {(e.phase, e.path): e for e in trace.events}
    fc1, act = at[(FORWARD, "blocks.0.ffn.fc1")], at[(FORWARD, "blocks.0.ffn.act")]
    assert act.tensors["x"] is fc1.tensors["out"]
    residual = at[(BACKWARD, "blocks.0.residual1")]
    assert residual.tensors["d_out"] is residual.tensors["d_fx"]
    named = sum(t.nbytes for e in trace.events for t in e.tensors.values())
    held = sum(m.nbytes for m in {id(_memory_of(t)): _memory_of(t) for e in trace.events
                                  for t in e.tensors.values()}.values())
    # Measured: 59% here (a copy per name: 100%); 45% on the benchmark's small config.
    assert held <= 0.65 * named, f"the trace holds {held} bytes for {named} named"


@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.id)
def test_later_steps_never_change_a_recorded_array(v):
    """Record a step, snapshot the bytes of every recorded array, then train on (forward,
    backward, Adam, and another recorded step): the trace must read exactly as before."""
    from engine.maths.optim import Adam

    model = build(v)
    model.train()
    optimizer = Adam(model.packed, lr=1e-2)
    trace = record(model)
    snapshot = {(e.index, n): t.tobytes() for e in trace.events for n, t in e.tensors.items()}
    for _ in range(2):
        optimizer.step()
        plain_step(model)
    optimizer.step()
    record(model)
    changed = [(trace.events[i].path, n) for (i, n), data in snapshot.items()
               if trace.events[i].tensors[n].tobytes() != data]
    assert not changed, f"changed after the step: {changed[:5]}"
