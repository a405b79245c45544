"""Debugging tools over a trace: built-in checks, break-it switches, gradient checks.

What is proved here:
- a clean model passes every check (encoder-decoder and decoder-only, float32 and float64);
- each break-it switch is caught by the check meant for it, at every layer it breaks, and
  only by the checks that what it breaks really concerns;
- each check fails on a trace tampered with in the way it guards against (so a check that
  passes is not merely a check that cannot fail);
- the gradient check agrees with the backward pass to < 1e-6 in float64, handles parameters
  whose gradient is exactly zero, catches a gradient that is off by 1 %, and leaves the model
  as it found it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import BreakSwitches, DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.trace.checks import (Finding, check_attention_range, check_finite, check_gradients,
                           check_masked_zero, check_no_future_leak, check_positional,
                           check_residual, check_scaling, check_shapes, check_softmax_rows,
                           gradient_check, run_checks)
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import BACKWARD, FORWARD
from engine.trace.trace import Batch, Trace, record_step

VOCAB = ["<pad>", "<s>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
PAD = 0
SRC = np.array([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]])  # (B=2, S=5); row 1 ends in padding
TGT_IN = np.array([[1, 6, 5, 4], [1, 9, 8, 0]])  # (B, T=4)
TGT_OUT = np.array([[6, 5, 4, 3], [9, 8, 7, 0]])
ALL_CHECKS = {"finite", "shapes", "softmax_rows", "attention_range", "masked_zero",
              "positional", "scaling", "residual", "future_leak", "gradients"}


def words(ids):
    return [[VOCAB[i] for i in row] for row in ids]


def build(kind: str = "encoder_decoder", breaks: dict | None = None, **overrides):
    cls = EncoderDecoderConfig if kind == "encoder_decoder" else DecoderOnlyConfig
    settings = dict(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_layers=2,
                    max_len=16, pad_id=PAD, seed=1, breaks=BreakSwitches(**(breaks or {})))
    settings.update(overrides)
    return build_model(cls(**settings))


def randomize(model, seed: int = 11):
    """Weights far from init (LayerNorm gains != 1, biases != 0) so every gradient carries
    signal and a wrong one cannot hide behind a zero."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, value in model.state_dict().items():
        noise = rng.standard_normal(value.shape)
        if name.endswith(".w"):
            state[name] = noise / np.sqrt(value.shape[0])
        elif name.endswith(".gamma"):
            state[name] = 1.0 + 0.2 * noise
        elif name.endswith((".b", ".beta")):
            state[name] = 0.2 * noise
        else:
            state[name] = 0.5 * noise
    model.load_state_dict(state)
    return model


def record(model, smoothing: float = 0.1) -> tuple[Trace, CrossEntropyLoss]:
    encdec = model.config.kind == "encoder_decoder"
    loss_fn = CrossEntropyLoss(model.config.pad_id, smoothing)
    batch = Batch(SRC if encdec else None, TGT_IN, TGT_OUT)
    trace = record_step(model, loss_fn, batch, words(SRC) if encdec else None, words(TGT_IN),
                        words(TGT_OUT))
    return trace, loss_fn


def failures(findings: list[Finding], check: str | None = None) -> list[Finding]:
    return [f for f in findings if not f.ok and (check is None or f.check == check)]


def events_of(trace: Trace, op: str) -> list:
    return [e for e in trace.events if e.phase == FORWARD and e.op == op]


# -- a clean model passes -----------------------------------------------------------------------
CLEAN = [
    ("encdec-post-relu-f32", "encoder_decoder", dict()),
    ("encdec-pre-gelu-learned-tied-f64", "encoder_decoder",
     dict(norm="pre", activation="gelu", positional="learned", tie_embeddings=True,
          dtype="float64")),
    ("dec-pre-gelu-f32", "decoder_only", dict(norm="pre", activation="gelu")),
]


@pytest.mark.parametrize("kind, overrides", [c[1:] for c in CLEAN], ids=[c[0] for c in CLEAN])
def test_a_clean_model_passes_every_check(kind, overrides):
    model = build(kind, **overrides)
    trace, loss_fn = record(model)
    findings = run_checks(trace, model, loss_fn)
    assert {f.check for f in findings} == ALL_CHECKS
    assert not failures(findings), "\n".join(f.message for f in failures(findings))
    assert all(f.severity == "info" for f in findings)


def test_without_the_model_the_rerun_checks_are_skipped_not_failed():
    model = build()
    trace, _ = record(model)
    findings = run_checks(trace)
    skipped = {f.check: f for f in findings if "skipped" in f.message}
    assert set(skipped) == {"future_leak", "gradients"}
    assert all(f.ok and f.severity == "info" for f in skipped.values())


# -- each break switch is caught ----------------------------------------------------------------
# switch -> the checks that must fail (and no others), and the events they must name
BREAKS = {
    "no_causal_mask": {"masked_zero", "future_leak"},
    "no_scaling": {"scaling"},
    # over queries: rows do not sum to 1, padded key columns get weight, and normalising over
    # queries lets a future query's score change an earlier query's weights
    "softmax_wrong_axis": {"softmax_rows", "masked_zero", "future_leak"},
    "no_residual": {"residual"},
    "no_positional": {"positional"},
}


@pytest.fixture(scope="module")
def clean_findings():
    """Findings of the clean float64 models the broken ones are compared with."""
    out = {}
    for kind in ("encoder_decoder", "decoder_only"):
        model = build(kind, dtype="float64", n_layers=1)
        trace, loss_fn = record(model)
        out[kind] = run_checks(trace, model, loss_fn)
    return out


@pytest.mark.parametrize("kind", ["encoder_decoder", "decoder_only"])
@pytest.mark.parametrize("switch", sorted(BREAKS))
def test_each_break_switch_is_caught_by_its_check(switch, kind, clean_findings):
    model = build(kind, breaks={switch: True}, dtype="float64", n_layers=1)
    trace, loss_fn = record(model)
    findings = run_checks(trace, model, loss_fn)
    caught = {f.check for f in failures(findings)}
    expected = set(BREAKS[switch])
    assert caught == expected, f"{switch}: caught by {caught}, expected {expected}"
    assert not failures(clean_findings[kind]), "the clean model must pass the same checks"
    for finding in failures(findings):
        assert finding.message and len(finding.message) > 60  # says what and why
        if finding.event_index is not None:
            assert trace.events[finding.event_index].path.startswith(finding.path)
            assert finding.path in finding.message


def test_no_causal_mask_is_flagged_in_every_decoder_self_attention_and_nowhere_else():
    model = build(breaks={"no_causal_mask": True})
    trace, _ = record(model)
    flagged = [f.path for f in failures(check_masked_zero(trace))]
    assert flagged == ["decoder.blocks.0.self_attn", "decoder.blocks.1.self_attn"]
    assert all("future" in f.message for f in check_masked_zero(trace))
    leak = failures(check_no_future_leak(model, trace))
    assert len(leak) == 1 and leak[0].severity == "error"
    # the very first position already sees the future; positions are counted from 1
    assert "logits at position 1 " in leak[0].message
    # a clean decoder-only model has no mask event without padding, but is still causal
    clean = build("decoder_only", pad_id=None)
    clean_trace, _ = record(clean)
    assert not failures(check_masked_zero(clean_trace))
    broken = build("decoder_only", pad_id=None, breaks={"no_causal_mask": True})
    broken_trace, _ = record(broken)
    assert not events_of(broken_trace, "mask")  # nothing to mask at all: the weights tell
    assert [f.path for f in failures(check_masked_zero(broken_trace))] == [
        "blocks.0.self_attn", "blocks.1.self_attn"]


def test_no_scaling_is_flagged_at_every_attention_layer():
    trace, _ = record(build(breaks={"no_scaling": True}))
    found = failures(check_scaling(trace))
    assert [f.event_index for f in found] == [e.index for e in events_of(trace, "scale")]
    assert len(found) == 6 and all(f.severity == "warning" for f in found)
    assert "1/sqrt(d_k)" in found[0].message and "0.3536" in found[0].message


def test_scaling_check_reads_the_numbers_not_only_the_flag():
    trace, _ = record(build())
    event = events_of(trace, "scale")[2]
    event.tensors["scaled"] = event.tensors["scores"] * np.float32(0.5)  # scaled, but wrongly
    found = failures(check_scaling(trace))
    assert [f.event_index for f in found] == [event.index]
    assert "0.5" in found[0].message


def test_softmax_wrong_axis_is_flagged_at_every_attention_softmax():
    trace, _ = record(build(breaks={"softmax_wrong_axis": True}))
    found = failures(check_softmax_rows(trace))
    assert [f.path for f in found] == [e.path for e in events_of(trace, "softmax")]
    assert all("axis -2" in f.message for f in found)
    assert not failures(check_attention_range(trace))  # still in [0, 1]: the rows tell


def test_softmax_rows_catch_a_distribution_that_does_not_sum_to_one():
    trace, _ = record(build())
    probs = events_of(trace, "output_softmax")[0]
    probs.tensors["probs"] = probs.tensors["probs"] * np.float32(0.98)
    probs.tensors["probs"][1, 2] *= np.float32(0.5)  # the worst row: item 2, position 3
    found = failures(check_softmax_rows(trace))
    assert [f.event_index for f in found] == [probs.index]
    assert "loss.softmax" in found[0].message
    assert "at item 2, position 3)" in found[0].message  # counted from 1


def test_no_residual_is_flagged_at_every_residual_add():
    trace, _ = record(build(breaks={"no_residual": True}))
    found = failures(check_residual(trace))
    assert [f.path for f in found] == [e.path for e in events_of(trace, "residual")]
    assert len(found) == 10  # 2 encoder blocks x 2 sublayers + 2 decoder blocks x 3


def test_residual_check_reads_the_numbers_not_only_the_flag():
    trace, _ = record(build())
    event = events_of(trace, "residual")[3]
    event.tensors["out"] = event.tensors["fx"].copy()
    assert [f.event_index for f in failures(check_residual(trace))] == [event.index]


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_no_positional_is_flagged_at_both_embeddings(positional):
    trace, _ = record(build(positional=positional, breaks={"no_positional": True}))
    found = failures(check_positional(trace))
    assert [f.path for f in found] == [e.path for e in events_of(trace, "positional")]
    assert len(found) == 2 and "order" in found[0].message


# -- every check can fail --------------------------------------------------------------------------
def test_attention_range_catches_weights_outside_zero_one():
    trace, _ = record(build())
    event = events_of(trace, "softmax")[1]
    event.tensors["weights"][0, 0, 0, 0] = 1.5
    event.tensors["weights"][0, 1, 2, 0] = -0.25
    found = failures(check_attention_range(trace))
    assert [f.event_index for f in found] == [event.index]
    assert "-0.25" in found[0].message and "1.5" in found[0].message


def test_masked_zero_catches_weight_on_a_padded_key():
    trace, _ = record(build())
    event = events_of(trace, "softmax")[0]  # encoder.blocks.0.self_attn: row 1 has 2 pad keys
    assert event.tensors["weights"][1, 0, 2, 4] == 0
    event.tensors["weights"][1, 0, 2, 4] = 0.2
    found = failures(check_masked_zero(trace))
    assert [(f.path, f.event_index) for f in found] == [("encoder.blocks.0.self_attn",
                                                         event.index)]
    assert "item 2, head 1, query 3, key 5" in found[0].message  # counted from 1


def test_a_row_with_nothing_to_see_attends_to_nothing():
    """A fully masked row has zero weights: no finding from the mask or the row-sum check;
    a uniform row there (weight on keys the query may not see) is a finding."""
    trace, _ = record(build())
    mask = next(e for e in trace.events if e.path == "encoder.blocks.0.self_attn.mask")
    softmax = next(e for e in trace.events if e.path == "encoder.blocks.0.self_attn.softmax")
    keep = np.broadcast_to(mask.tensors["keep"], softmax.tensors["weights"].shape).copy()
    keep[0, :, 1, :] = False
    mask.tensors["keep"] = keep
    softmax.tensors["weights"][0, :, 1, :] = 0
    assert not failures(check_masked_zero(trace))
    assert not failures(check_softmax_rows(trace))
    softmax.tensors["weights"][0, :, 1, :] = 1 / 5
    assert [f.event_index for f in failures(check_masked_zero(trace))] == [softmax.index]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_finite_names_the_first_event_with_an_injected_nan():
    model = build()
    {p.name: p for p in model.params()}["decoder.blocks.1.ffn.fc1.w"].data[3, 5] = np.nan
    trace, _ = record(model)
    found = failures(check_finite(trace))
    assert len(found) == 1 and found[0].severity == "error"
    first = trace.events[found[0].event_index]
    assert (first.phase, first.path) == (FORWARD, "decoder.blocks.1.ffn.fc1")
    assert "'w' (1 NaN, 0 Inf)" in found[0].message
    # events are numbered from 1, as the explorer's status line and tree number them
    assert f"first appears at event {found[0].event_index + 1}," in found[0].message
    assert not failures(check_finite(record(build())[0]))


def test_shapes_follow_the_config():
    trace, _ = record(build())
    assert not failures(check_shapes(trace))
    wrong_heads = dataclasses.replace(trace, config=dataclasses.replace(trace.config, n_heads=4))
    found = failures(check_shapes(wrong_heads))
    ops = {trace.events[f.event_index].op for f in found}
    assert ops == {"split_heads", "scores", "scale", "mask", "softmax", "attend"}
    assert "(2, 4, 4, 4)" in " ".join(f.message for f in found)  # (B, H=4, T, K=4) expected


def test_shapes_catch_a_tensor_and_a_gradient_of_the_wrong_shape():
    trace, _ = record(build())
    split = next(e for e in trace.events if e.path == "decoder.blocks.0.cross_attn.split_heads")
    split.tensors["k_heads"] = split.tensors["k_heads"].reshape(2, 4, 5, 4)  # 4 heads of 4
    grad = next(e for e in trace.events if e.phase == BACKWARD and e.path == "lm_head")
    grad.tensors["grad.w"] = grad.tensors["grad.w"].T
    found = failures(check_shapes(trace))
    split_back = next(e for e in trace.events if e.phase == BACKWARD and e.path == split.path)
    assert [f.event_index for f in found] == [split.index, grad.index, split_back.index]
    assert "'k_heads' is (2, 4, 5, 4), expected (2, 2, 5, 8)" in found[0].message
    assert "'grad.w' is (12, 16) but 'w' was (16, 12)" in found[1].message
    assert "'d_k_heads' is (2, 2, 5, 8) but 'k_heads' was (2, 4, 5, 4)" in found[2].message


# -- the leak test --------------------------------------------------------------------------------
def test_leak_check_restores_the_model_and_runs_without_dropout():
    model = build(dropout=0.3, breaks={"no_causal_mask": True})  # dropout would add noise
    trace, _ = record(model)
    before = model.state_dict()
    assert failures(check_no_future_leak(model, trace))
    assert all(m.training for m in model.modules())  # back in train mode
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    clean = build(dropout=0.3)
    assert not failures(check_no_future_leak(clean, record(clean)[0]))


# -- gradient check -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def float64_model():
    # learned positions and max_len 6: most position rows are used, so samples carry signal
    model = randomize(build(dtype="float64", n_layers=1, positional="learned", max_len=6,
                            activation="gelu"))
    model.eval()
    trace, loss_fn = record(model)
    return model, trace, loss_fn


def test_gradient_check_agrees_to_1e6_for_every_parameter_in_float64(float64_model):
    model, trace, loss_fn = float64_model
    results = {p.name: gradient_check(model, loss_fn, trace, p.name, n_samples=3)
               for p in model.params()}
    worst = max(results.values(), key=lambda r: r.max_rel_error)
    assert worst.max_rel_error < 1e-6, (worst.param, worst.max_rel_error)
    assert all(r.ok and r.dtype == "float64" and r.eps == 1e-5 for r in results.values())
    signal = [r for r in results.values() if np.abs(r.analytic).max() > 1e-3]
    assert len(signal) > 0.8 * len(results)  # the agreement is not between zeros


def test_gradient_check_reports_every_sampled_element(float64_model):
    model, trace, loss_fn = float64_model
    r = gradient_check(model, loss_fn, trace, "decoder.blocks.0.ffn.fc1.w", n_samples=20, seed=3)
    assert len(r.indices) == len(set(r.indices)) == 20
    assert all(0 <= i < 16 and 0 <= j < 32 for i, j in r.indices)
    grad = trace.param_grads()["decoder.blocks.0.ffn.fc1.w"]
    assert np.array_equal(r.analytic, [grad[i] for i in r.indices])
    assert r.numeric.shape == r.rel_error.shape == r.abs_error.shape == (20,)
    assert r.max_rel_error == r.rel_error.max() < 1e-6
    everything = gradient_check(model, loss_fn, trace, "lm_head.b", n_samples=1000)
    assert sorted(everything.indices) == [(i,) for i in range(len(VOCAB))]


def test_gradient_check_handles_an_exactly_zero_gradient(float64_model):
    """Softmax ignores a shift shared by all keys, so the key bias gets no gradient: the
    comparison must fall back on the absolute floor, not divide noise by zero."""
    model, trace, loss_fn = float64_model
    r = gradient_check(model, loss_fn, trace, "encoder.blocks.0.self_attn.k_proj.b")
    assert np.abs(r.analytic).max() < 1e-15
    assert np.abs(r.numeric).max() < r.floor * r.tolerance
    assert r.ok and r.max_rel_error < 1e-6


def test_gradient_check_catches_a_gradient_off_by_one_percent(float64_model):
    model, trace, loss_fn = float64_model
    name = "decoder.blocks.0.cross_attn.v_proj.w"
    event = next(e for e in trace.events if e.phase == BACKWARD
                 and name in e.attrs.get("params", {}).values())
    wrong = dataclasses.replace(trace, events=list(trace.events))
    wrong.events[event.index] = dataclasses.replace(
        event, tensors={**event.tensors, "grad.w": event.tensors["grad.w"] * 1.01})
    r = gradient_check(model, loss_fn, wrong, name, n_samples=5)
    assert not r.ok and 4e-3 < r.max_rel_error < 6e-3  # |0.01 a| / |2.01 a|
    found = check_gradients(model, loss_fn, wrong, params=[name, "lm_head.w"])
    assert [(f.check, f.path, f.event_index, f.severity) for f in failures(found)] == [
        ("gradients", name, event.index, "error")]


def test_gradient_check_leaves_the_model_as_it_found_it(float64_model):
    model, trace, loss_fn = float64_model
    model.train()
    before = model.state_dict()
    gradient_check(model, loss_fn, trace, "encoder.blocks.0.ln1.gamma")
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(m.training for m in model.modules())
    model.eval()


def test_gradient_check_says_when_it_cannot_be_trusted(float64_model):
    model, trace, loss_fn = float64_model
    with pytest.raises(KeyError, match="no parameter"):
        gradient_check(model, loss_fn, trace, "decoder.blocks.0.nope.w")
    weight = {p.name: p for p in model.params()}["lm_head.w"]
    weight.data[:, 3] += 0.1  # trained since the trace was recorded
    try:
        r = gradient_check(model, loss_fn, trace, "lm_head.w", n_samples=2)
        assert "changed since the trace was recorded" in r.note
    finally:
        weight.data[:, 3] -= 0.1
    dropout_model = build(dtype="float64", dropout=0.2)
    dropout_trace, dropout_loss = record(dropout_model)
    r = gradient_check(dropout_model, dropout_loss, dropout_trace, "lm_head.b", n_samples=2)
    assert r.dropout_in_trace and "dropout" in r.note
    found = check_gradients(dropout_model, dropout_loss, dropout_trace)
    assert len(found) == 1 and found[0].ok and "dropout" in found[0].message


def test_gradient_check_of_a_float32_trace_uses_a_float64_twin():
    # A float32 trace is compared with float64 differences: strict, and no false alarms even
    # where float32 differences would fail (no residuals: LayerNorm over tiny inputs).
    for breaks in (None, {"no_residual": True}):
        model = build(n_layers=1, breaks=breaks)
        model.eval()
        trace, loss_fn = record(model)
        for name in ("decoder.blocks.0.ffn.fc2.w", "encoder.blocks.0.self_attn.q_proj.w"):
            r = gradient_check(model, loss_fn, trace, name, n_samples=10)
            assert r.dtype == "float32" and "float64" in r.note
            assert r.ok, (breaks, name, r.max_rel_error)
        assert not [f for f in run_checks(trace, model, loss_fn) if f.check == "gradients" and not f.ok]


def test_gradient_check_of_a_float32_trace_still_catches_a_one_percent_error():
    model = build(n_layers=1)
    model.eval()
    trace, loss_fn = record(model)
    name = "decoder.blocks.0.ffn.fc1.w"
    event = next(e for e in trace.events if e.phase == "backward" and name in e.attrs.get("params", {}).values())
    event.tensors["grad.w"] = event.tensors["grad.w"] * np.float32(1.01)
    r = gradient_check(model, loss_fn, trace, name, n_samples=10)
    assert not r.ok and r.max_rel_error > 3e-3