"""Navigation: a Cursor steps through a Trace like a debugger, and attention maps come labelled.

A cursor stands on an event and a level of its path ("encoder" < "encoder.blocks.0" <
"encoder.blocks.0.self_attn" < "...q_proj"). Expected positions are written as paths, so a
test reads like the walk a learner takes.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.maths.loss import CrossEntropyLoss
from engine.trace.navigation import Cursor, at_path, grad_norm_above, has_nonfinite, op_is
from engine.maths.recorder import BACKWARD, FORWARD, Event
from engine.trace.trace import Batch, Trace, record_step

VOCAB = ["<pad>", "<s>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
PAD = 0
SRC = np.array([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]])  # (B=2, S=5); row 1 ends in padding
TGT_IN = np.array([[1, 6, 5, 4], [1, 9, 8, 0]])  # (B, T=4)
TGT_OUT = np.array([[6, 5, 4, 3], [9, 8, 7, 0]])


def words(ids):
    return [[VOCAB[i] for i in row] for row in ids]


def build(kind: str = "encoder_decoder", **overrides):
    cls = EncoderDecoderConfig if kind == "encoder_decoder" else DecoderOnlyConfig
    settings = dict(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_layers=2,
                    max_len=16, pad_id=PAD, seed=1)
    settings.update(overrides)
    return build_model(cls(**settings))


def record(model) -> Trace:
    encdec = model.config.kind == "encoder_decoder"
    batch = Batch(SRC if encdec else None, TGT_IN, TGT_OUT)
    return record_step(model, CrossEntropyLoss(model.config.pad_id), batch,
                       words(SRC) if encdec else None, words(TGT_IN), words(TGT_OUT))


@pytest.fixture(scope="module")
def trace() -> Trace:
    return record(build())


def where(cursor: Cursor) -> tuple[str, str, int]:
    return cursor.event.phase, cursor.event.path, cursor.level


# -- single steps and jumps ------------------------------------------------------------------------
def test_next_and_prev_move_one_event_and_stop_at_the_ends(trace):
    c = Cursor(trace)
    assert (c.index, c.level) == (0, 1) and c.node() == (FORWARD, "encoder")
    c.next()
    assert c.index == 1 and c.event.path == "encoder.pos_enc" and c.level == 2  # on the leaf
    c.prev().prev()
    assert c.index == 0
    c.goto(len(trace) + 5)
    assert c.index == len(trace) - 1
    c.next()
    assert c.index == len(trace) - 1 and c.event.path == "encoder.tok_emb"  # last backward op
    assert c.event.phase == BACKWARD


def test_over_steps_whole_layers_at_the_top_level(trace):
    c = Cursor(trace)
    stops = [where(c)]
    for _ in range(8):
        stops.append(where(c.over()))
    assert stops == [
        (FORWARD, "encoder.tok_emb", 1),
        (FORWARD, "decoder.tok_emb", 1),
        (FORWARD, "lm_head", 1),
        (FORWARD, "loss.softmax", 1),
        (BACKWARD, "loss.cross_entropy", 1),  # a layer's backward is a node of its own
        (BACKWARD, "lm_head", 1),
        (BACKWARD, "decoder.blocks.1.ln3", 1),
        (BACKWARD, "encoder.blocks.1.ln2", 1),
        (BACKWARD, "encoder.blocks.1.ln2", 1),  # the last node runs to the end: no move
    ]


def test_into_over_out_walk_down_and_back_up(trace):
    c = Cursor(trace)
    assert where(c.into()) == (FORWARD, "encoder.tok_emb", 2)
    assert where(c.over()) == (FORWARD, "encoder.pos_enc", 2)
    assert where(c.over()) == (FORWARD, "encoder.emb_drop", 2)
    assert where(c.over()) == (FORWARD, "encoder.blocks.0.self_attn.q_proj", 2)
    assert c.node() == (FORWARD, "encoder.blocks.0")
    assert where(c.over()) == (FORWARD, "encoder.blocks.1.self_attn.q_proj", 2)
    assert where(c.into()) == (FORWARD, "encoder.blocks.1.self_attn.q_proj", 3)
    assert c.node() == (FORWARD, "encoder.blocks.1.self_attn")
    assert where(c.into()) == (FORWARD, "encoder.blocks.1.self_attn.q_proj", 4)
    assert where(c.into()) == (FORWARD, "encoder.blocks.1.self_attn.q_proj", 4)  # an op: stays
    assert where(c.over()) == (FORWARD, "encoder.blocks.1.self_attn.k_proj", 4)
    # out: finish the self-attention, stop on what follows it, one level up
    assert where(c.out()) == (FORWARD, "encoder.blocks.1.drop1", 3)
    # out again: finish encoder.blocks.1 (the last encoder block): on to the decoder
    assert where(c.out()) == (FORWARD, "decoder.tok_emb", 2)
    assert where(c.out()) == (FORWARD, "lm_head", 1)


def test_out_from_deep_inside_a_backward_layer(trace):
    c = Cursor(trace).to_path("decoder.blocks.0.cross_attn", BACKWARD)
    assert where(c) == (BACKWARD, "decoder.blocks.0.cross_attn.o_proj", 4)
    c.next().next()
    assert c.event.path == "decoder.blocks.0.cross_attn.attend"
    assert where(c.out()) == (BACKWARD, "decoder.blocks.0.ln1", 3)
    assert where(c.out()) == (BACKWARD, "decoder.emb_drop", 2)  # block 0 was the last one back


def test_back_over_mirrors_over(trace):
    c = Cursor(trace).to_path("encoder.blocks.1")
    c.level = 2
    assert where(c.back_over()) == (FORWARD, "encoder.blocks.0.self_attn.q_proj", 2)
    assert c.node() == (FORWARD, "encoder.blocks.0")
    assert where(c.back_over()) == (FORWARD, "encoder.emb_drop", 2)
    c = Cursor(trace).to_path("encoder.blocks.0.drop1")
    c.level = 3
    assert where(c.back_over()) == (FORWARD, "encoder.blocks.0.self_attn.q_proj", 3)
    c = Cursor(trace).to_path("lm_head")
    assert where(c.back_over()) == (FORWARD, "decoder.tok_emb", 1)
    assert where(c.back_over()) == (FORWARD, "encoder.tok_emb", 1)
    assert where(c.back_over()) == (FORWARD, "encoder.tok_emb", 1)  # at the start: stays
    # over then back_over returns to where it started, at every level
    for level, path in [(1, "decoder"), (2, "decoder.blocks.0"), (3, "decoder.blocks.0.ln2")]:
        c = Cursor(trace).to_path(path)
        c.level = level
        start = c.index
        c.over().back_over()
        assert (c.index, c.level) == (start, level), path


def test_jump_to_first_backward_and_end_of_forward(trace):
    c = Cursor(trace).to_first_backward()
    assert c.index == trace.first_backward
    assert c.event.phase == BACKWARD and c.event.path == "loss.cross_entropy"
    assert trace.events[c.index - 1].phase == FORWARD
    c.to_end_of_forward()
    assert c.event.phase == FORWARD and c.event.op == "cross_entropy"
    assert c.index == trace.first_backward - 1


def test_jump_by_path(trace):
    c = Cursor(trace)
    assert where(c.to_path("decoder.blocks.1.cross_attn")) == (
        FORWARD, "decoder.blocks.1.cross_attn.q_proj", 4)
    assert where(c.to_path("decoder.blocks.1.cross_attn.softmax", BACKWARD)) == (
        BACKWARD, "decoder.blocks.1.cross_attn.softmax", 4)
    assert where(c.to_path("lm_head")) == (FORWARD, "lm_head", 1)
    with pytest.raises(KeyError, match="decoder.blocks.9"):
        c.to_path("decoder.blocks.9")
    assert c.event.path == "lm_head"  # a failed jump does not move


def test_an_empty_trace_has_nothing_to_step_through(trace):
    empty = Trace([], trace.config, trace.batch, 0.0, None, [], [])
    with pytest.raises(ValueError, match="no events"):
        Cursor(empty)


# -- find next / previous ------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_find_next_nan_stops_at_the_first_op_that_reads_the_injected_nan():
    model = build()
    weight = {p.name: p for p in model.params()}["decoder.blocks.1.ffn.fc1.w"]
    weight.data[3, 5] = np.nan
    trace = record(model)
    c = Cursor(trace)
    assert c.find_next(has_nonfinite)
    assert (c.event.phase, c.event.path, c.event.op) == (FORWARD, "decoder.blocks.1.ffn.fc1",
                                                          "linear")
    assert np.isnan(c.event.tensors["w"][3, 5]) and np.isnan(c.event.tensors["out"]).any()
    assert not np.isnan(c.event.tensors["x"]).any()  # its input was still clean
    assert not any(has_nonfinite(trace.events[i]) for i in range(c.index))
    assert c.find_next(has_nonfinite)  # the NaN spreads: act, fc2, ...
    assert c.event.path == "decoder.blocks.1.ffn.act"


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_find_next_inf_and_find_prev():
    model = build()
    {p.name: p for p in model.params()}["lm_head.b"].data[2] = np.inf
    trace = record(model)
    c = Cursor(trace)
    assert c.find_next(has_nonfinite) and c.event.path == "lm_head" and c.event.phase == FORWARD
    c.to_path("decoder.blocks.0", BACKWARD)
    start = c.index
    assert c.find_prev(has_nonfinite)  # searches strictly before the cursor
    assert c.index == max(e.index for e in trace.events[:start] if has_nonfinite(e))


def test_find_next_returns_false_and_stays_when_nothing_matches(trace):
    c = Cursor(trace).goto(10)
    assert not c.find_next(has_nonfinite)
    assert c.index == 10
    assert not c.find_prev(op_is("no_such_op"))
    assert c.index == 10


def test_has_nonfinite_ignores_integer_and_boolean_tensors():
    event = Event(0, FORWARD, "x", "mask", {"keep": np.array([True, False]),
                                          "ids": np.array([1, 2])})
    assert not has_nonfinite(event)
    event.tensors["masked"] = np.array([-1e9, np.inf], np.float32)
    assert has_nonfinite(event)


def test_find_next_gradient_norm_above_a_bound(trace):
    def grad_norm(e):
        return max((float(np.linalg.norm(t.astype(np.float64)))
                    for n, t in e.tensors.items() if n.startswith(("d_", "grad."))), default=0.0)

    norms = [grad_norm(e) for e in trace.events]
    assert all(norm == 0.0 for norm in norms[:trace.first_backward])  # forward has no gradients
    bound = float(np.median([n for n in norms if n > 0]))
    c = Cursor(trace)
    assert c.find_next(grad_norm_above(bound))
    first = next(i for i, n in enumerate(norms) if n > bound)
    assert c.index == first and c.event.phase == BACKWARD
    assert c.find_next(grad_norm_above(bound))
    assert c.index == next(i for i, n in enumerate(norms) if n > bound and i > first)
    assert not Cursor(trace).find_next(grad_norm_above(max(norms) * 1.01))


def test_find_next_by_op_and_by_path(trace):
    c = Cursor(trace)
    softmaxes = [e.path for e in trace.events if e.op == "softmax" and e.phase == FORWARD]
    visited = []
    while c.find_next(op_is("softmax")) and c.event.phase == FORWARD:
        visited.append(c.event.path)
    assert visited == softmaxes and len(visited) == 6  # 2 encoder self, 2 x (self, cross)
    c = Cursor(trace)
    assert c.find_next(at_path("decoder.blocks.1.ffn"))
    assert c.event.path == "decoder.blocks.1.ffn.fc1"
    assert c.find_next(at_path("decoder.blocks.1.ffn"))
    assert c.event.path == "decoder.blocks.1.ffn.act"
    assert not at_path("decoder.blocks.1")(
        Event(0, FORWARD, "decoder.blocks.10.ffn.fc1", "linear", {}))


# -- attention maps -------------------------------------------------------------------------------
def test_attention_paths_in_forward_order(trace):
    assert trace.attention_paths == [
        "encoder.blocks.0.self_attn", "encoder.blocks.1.self_attn",
        "decoder.blocks.0.self_attn", "decoder.blocks.0.cross_attn",
        "decoder.blocks.1.self_attn", "decoder.blocks.1.cross_attn"]


def test_encoder_self_attention_is_labelled_with_source_tokens(trace):
    m = trace.attention("encoder.blocks.1.self_attn", head=1, batch=1)
    weights = trace.events[m.event_index].tensors["weights"]
    assert trace.events[m.event_index].path == "encoder.blocks.1.self_attn.softmax"
    assert np.array_equal(m.values, weights[1, 1])
    assert m.rows == m.cols == ["f", "g", "h", "<pad>", "<pad>"]
    assert m.values.shape == (5, 5)
    assert m.keep.shape == (5, 5)
    assert np.array_equal(m.keep, np.tile([True, True, True, False, False], (5, 1)))
    assert np.all(m.values[:, 3:] == 0)  # padding columns get exactly zero weight
    np.testing.assert_allclose(m.values.sum(axis=1), 1.0, rtol=1e-6)


def test_decoder_self_attention_is_causal_and_labelled_with_target_inputs(trace):
    m = trace.attention("decoder.blocks.0.self_attn", head=0, batch=0)
    assert m.rows == m.cols == ["<s>", "e", "d", "c"]
    assert np.array_equal(m.keep, np.tril(np.ones((4, 4), bool)))
    assert np.all(m.values[np.triu_indices(4, k=1)] == 0)
    assert m.values[0, 0] == pytest.approx(1.0)
    padded = trace.attention("decoder.blocks.0.self_attn", head=0, batch=1)
    assert padded.rows == ["<s>", "h", "g", "<pad>"]
    assert not padded.keep[3, 3] and padded.keep[3, 2]  # causal and padding together


def test_cross_attention_rows_are_targets_and_columns_are_sources(trace):
    m = trace.attention("decoder.blocks.1.cross_attn", head=1, batch=1)
    assert m.rows == ["<s>", "h", "g", "<pad>"]
    assert m.cols == ["f", "g", "h", "<pad>", "<pad>"]
    assert m.values.shape == (4, 5)
    assert np.all(m.values[:, 3:] == 0) and np.all(m.values[:, :3] > 0)
    assert not m.keep[:, 3:].any() and m.keep[:, :3].all()


def test_attention_stages_are_the_recorded_steps(trace):
    path = "decoder.blocks.0.self_attn"
    events = {e.path: e for e in trace.events if e.phase == FORWARD}
    for stage, (suffix, name) in {"scores": ("scores", "scores"), "scaled": ("scale", "scaled"),
                                  "masked": ("mask", "masked"),
                                  "weights": ("softmax", "weights")}.items():
        m = trace.attention(path, head=1, batch=0, stage=stage)
        assert m.stage == stage and m.event_index == events[f"{path}.{suffix}"].index
        assert np.array_equal(m.values, events[f"{path}.{suffix}"].tensors[name][0, 1])
    masked = trace.attention(path, head=1, stage="masked")
    assert np.all(masked.values[~masked.keep] == np.float32(-1e9))


def test_attention_without_a_mask_falls_back_and_has_no_keep():
    model = build(pad_id=None)  # no padding: the encoder has nothing to mask
    trace = record(model)
    m = trace.attention("encoder.blocks.0.self_attn", stage="masked")
    assert m.keep is None
    assert trace.events[m.event_index].path == "encoder.blocks.0.self_attn.scale"


def test_decoder_only_attention_labels():
    trace = record(build("decoder_only"))
    assert trace.attention_paths == ["blocks.0.self_attn", "blocks.1.self_attn"]
    m = trace.attention("blocks.1.self_attn", head=0, batch=0)
    assert m.rows == m.cols == ["<s>", "e", "d", "c"]
    assert np.all(m.values[np.triu_indices(4, k=1)] == 0)


def test_attention_rejects_bad_requests_with_a_useful_message(trace):
    with pytest.raises(ValueError, match="stage"):
        trace.attention("decoder.blocks.0.self_attn", stage="logits")
    with pytest.raises(IndexError, match="head"):
        trace.attention("decoder.blocks.0.self_attn", head=2)
    with pytest.raises(IndexError, match="batch"):
        trace.attention("decoder.blocks.0.self_attn", batch=2)
    with pytest.raises(KeyError, match="encoder.blocks.0.self_attn"):  # lists the real ones
        trace.attention("decoder.blocks.5.self_attn")


def test_over_keeps_its_level_across_a_shallower_stretch(trace):
    # Stepping over sublayers at level 3 passes through decoder.tok_emb (depth 2); once back in
    # the decoder blocks it must step sublayers again, not whole blocks.
    c = Cursor(trace).to_path("encoder.blocks.1.ffn")
    c.level = 3
    paths = []
    while c.event.path != "decoder.blocks.0.self_attn.q_proj" and len(paths) < 20:
        c.over()
        paths.append(c.node()[1])
    assert "decoder.tok_emb" in paths
    c.over()
    assert c.node() == (FORWARD, "decoder.blocks.0.drop1") and c.level == 3


def test_find_next_can_include_the_current_event(trace):
    c = Cursor(trace)
    assert c.find_next(lambda e: e.index == 0, include_current=True) and c.index == 0
    assert not c.find_next(lambda e: e.index == 0)
