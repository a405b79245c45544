"""The facts the model declares and the recorder stamps on every event: token streams, self or
cross attention, causality, the parameters a gradient belongs to; and one path index a trace.

Source and target have different lengths here (S=5, T=4), so a map labelled with the wrong
stream would not even have the right number of labels.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from engine.maths.facts import CROSS_ATTENTION, SELF_ATTENTION, SOURCE, TARGET
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import BACKWARD, FORWARD
from engine.trace import trace as trace_module
from engine.trace.checks import check_masked_zero, run_checks
from engine.trace.trace import record_step
from test_trace import SRC, TGT_IN, TGT_OUT, Variant, batch_for, build, words


def record(model):
    batch = batch_for(model)
    loss_fn = CrossEntropyLoss(model.config.pad_id, 0.1)
    src_words = None if batch.src is None else words(SRC)
    return record_step(model, loss_fn, batch, src_words, words(TGT_IN), words(TGT_OUT)), loss_fn


def attention_layers(model) -> dict[str, tuple[str, bool, str, str]]:
    """path -> (kind, causal, rows' stream, keys' stream), from the model's own structure."""
    if model.config.kind == "decoder_only":
        return {b.sublayers[0].inner.path: (SELF_ATTENTION, True, TARGET, TARGET)
                for b in model.blocks}
    expected = {}
    for block in model.encoder_blocks:
        expected[block.sublayers[0].inner.path] = (SELF_ATTENTION, False, SOURCE, SOURCE)
    for block in model.decoder_blocks:
        expected[block.sublayers[0].inner.path] = (SELF_ATTENTION, True, TARGET, TARGET)
        expected[block.sublayers[1].inner.path] = (CROSS_ATTENTION, False, TARGET, SOURCE)
    return expected


@pytest.mark.parametrize("variant", [Variant("encdec"), Variant("dec", kind="decoder_only")],
                         ids=lambda v: v.id)
def test_attention_layers_declare_kind_causality_and_streams(variant):
    model = build(variant)
    trace, _ = record(model)
    expected = attention_layers(model)
    assert trace.attention_paths == list(expected)  # every layer, in forward order
    tokens = {SOURCE: words(SRC), TARGET: words(TGT_IN)}
    for path, (kind, causal, rows, keys) in expected.items():
        steps = [e for e in trace.events if e.facts.attention_layer == path]
        assert {e.op for e in steps} >= {"scores", "scale", "softmax", "attend"}
        for event in steps:
            assert (event.facts.attention, event.facts.causal, event.facts.keys) == \
                (kind, causal, keys), (event.phase, event.path)
        for stage in ("scores", "scaled", "masked", "weights"):
            amap = trace.attention(path, head=1, batch=1, stage=stage)
            assert (amap.rows, amap.cols) == (tokens[rows][1], tokens[keys][1])
            assert amap.values.shape == (len(amap.rows), len(amap.cols))
            assert amap.facts.attention == kind and amap.facts.causal == causal


def test_every_event_names_the_stream_its_positions_belong_to():
    """Encoder ops run over the source, decoder ops, the head and the loss over the target;
    the keys and values of cross-attention are computed from the source."""
    model = build(Variant("encdec"))
    trace, _ = record(model)
    source = {m.path for top in (model.src_embed, *model.encoder_blocks) for m in top.modules()}
    cross = [b.sublayers[1].inner for b in model.decoder_blocks]
    source |= {p.path for attn in cross for p in (attn.k_proj, attn.v_proj)}
    for event in trace.events:
        stream = SOURCE if event.path in source or any(
            event.path.startswith(b.path + ".") for b in model.encoder_blocks) else TARGET
        assert event.facts.rows == stream, (event.phase, event.path)
        if event.facts.rows == SOURCE and event.op == "linear" and event.phase == FORWARD:
            assert event.tensors["x"].shape[1] == SRC.shape[1]
    at_vocabulary = {e.path for e in trace.events if e.facts.vocabulary}
    assert at_vocabulary == {model.head.path, "loss.softmax", "loss.cross_entropy"}


@pytest.mark.parametrize("variant", [Variant("encdec"), Variant("dec-tied", kind="decoder_only",
                                                                tie_embeddings=True)],
                         ids=lambda v: v.id)
def test_a_backward_events_gradients_belong_to_its_modules_parameters(variant):
    model = build(variant)
    trace, _ = record(model)
    modules = {m.path: m for m in model.modules() if m.param_names()}
    params = {p.name: p for p in model.params()}
    owned = set()
    for event in trace.events:
        grads = {n[len("grad."):] for n in event.tensors if n.startswith("grad.")}
        if event.phase != BACKWARD or not grads:
            continue
        if event.path == model.head.path and model.config.tie_embeddings:
            declared = {"embedding": model.embed.tok_emb.weight.name}
        else:
            declared = modules[event.path].param_names()
        assert dict(event.facts.params) == declared, event.path
        for local in grads:  # every gradient it recorded is its parameter's shape
            assert event.tensors[f"grad.{local}"].shape == params[declared[local]].data.shape
        owned |= set(declared.values())
    assert owned == set(params)  # every parameter's gradient comes from some backward event
    summed = trace.param_grads()  # summed from the facts: equals what backward accumulated
    for name, param in params.items():
        np.testing.assert_allclose(summed[name], param.grad, rtol=1e-6, atol=1e-7)


def test_checks_take_causality_from_the_facts():
    """Declare the encoder's self-attention causal: it sees later source tokens, so the
    check reports it (a check that looked for "self_attn" outside "encoder." would not)."""
    model = build(Variant("encdec"))
    attn = model.encoder_blocks[0].sublayers[0].inner
    for module in attn.modules():
        module.facts = dataclasses.replace(module.facts, causal=True)
    trace, _ = record(model)
    failing = [f for f in check_masked_zero(trace) if not f.ok]
    assert [f.path for f in failing] == [attn.path]
    assert "future" in failing[0].message


def test_the_path_index_is_built_once_per_trace(monkeypatch):
    built = []
    original = trace_module.PathIndex.__init__

    def counting(self, events):
        built.append(len(events))
        original(self, events)

    monkeypatch.setattr(trace_module.PathIndex, "__init__", counting)
    model = build(Variant("encdec"))
    trace, loss_fn = record(model)
    for path in trace.attention_paths:
        for stage in ("scores", "masked", "weights"):
            trace.attention(path, stage=stage)
    run_checks(trace, model, loss_fn)
    assert all(trace.forward_at(e.path) is not None for e in trace.events if e.phase == FORWARD)
    assert built == [len(trace)]


def test_the_trace_does_not_import_training():
    code = ("import sys, engine.trace.trace, engine.trace.checks, engine.trace.navigation, "
            "engine.trace.formulas; "
            "print(sorted(m for m in sys.modules if m.startswith('engine.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
