"""Session: the explorer's model of the world, driven without a screen."""
from dataclasses import replace

import numpy as np
import pytest

from engine.maths.loss import CrossEntropyLoss
from tui_tfs.session import Session, SessionError


@pytest.fixture(scope="module")
def reverse():
    return Session.open("reverse")


def test_opens_on_first_example(reverse):
    s = Session.open("reverse")
    assert s.cursor.index == 0 and s.event.phase == "forward"
    assert s.trace.src_tokens[0] == list("31415")
    assert "event 1 of" in s.status()


def test_stepping_moves_the_cursor():
    s = Session.open("reverse")
    s.step("next")
    assert s.cursor.index == 1
    s.step("prev")
    assert s.cursor.index == 0
    s.step("over")
    assert not s.event.path.startswith("encoder.tok_emb")
    s.step("first_backward")
    assert s.event.phase == "backward" and s.cursor.index == s.trace.first_backward
    s.step("end_of_forward")
    assert s.event.phase == "forward" and s.cursor.index == s.trace.first_backward - 1
    with pytest.raises(SessionError):
        s.step("sideways")


def test_find_layer_and_attention_labels():
    s = Session.open("reverse")
    assert s.find("path", "decoder.blocks.0.cross_attn.softmax")
    amap = s.attention_map()
    assert amap.path == "decoder.blocks.0.cross_attn"
    assert amap.rows == ["<s>", "5", "1", "4", "1", "3"] and amap.cols == list("31415")
    assert np.allclose(amap.values.sum(-1), 1, atol=1e-5)
    s.view = replace(s.view, stage="masked")
    s.cursor.to_path("decoder.blocks.0.self_attn.softmax")
    masked = s.attention_map()
    assert masked.keep is not None and not masked.keep[0, 1]  # <s> cannot see the future


def test_tensor_and_gradient_pairs():
    s = Session.open("reverse")
    s.find("path", "encoder.blocks.0.self_attn.q_proj")
    s.view = replace(s.view, tensor="w")
    event, name = s.counterpart()
    assert event.phase == "backward" and name == "grad.w"
    s.view = replace(s.view, gradient=True)
    assert s.shown_tensor()[1] == "grad.w"
    values, rows, cols, where = s.tensor_slice(*s.shown_tensor())
    assert values.shape == (32, 32)


def test_3d_and_4d_slices_follow_item_and_head():
    s = Session.open("reverse")
    s.new_batch()
    s.find("op", "softmax")
    s.view = replace(s.view, tensor="weights", item=2, head=3)
    values, rows, cols, where = s.tensor_slice(s.event, "weights")
    assert np.array_equal(values, s.event.tensors["weights"][2, 3])
    assert where == "[item 3/4, head 4/4]"  # counted from 1 on screen
    assert rows == s.trace.src_tokens[2]


def test_own_input_and_bad_input():
    s = Session.open("reverse")
    s.trace_text("987")
    assert s.trace.src_tokens[0] == ["9", "8", "7"]
    with pytest.raises(Exception) as info:
        s.trace_text("12a")
    assert "a" in str(info.value)


def test_break_switch_rebuilds_and_reruns():
    s = Session.open("reverse")
    before = {e.path for e in s.trace.events}
    assert s.toggle_break("no_causal_mask") is True
    after = {e.path for e in s.trace.events}
    assert "decoder.blocks.0.self_attn.mask" in before - after
    assert s.breaks.no_causal_mask


def test_grad_norms_fill_in_during_backward():
    s = Session.open("reverse")
    assert all(n.norm is None for n in s.grad_norms())
    s.step("first_backward")
    s.step("next")
    norms = s.grad_norms()
    assert norms[0].path == "lm_head" and norms[0].norm > 0
    assert norms[-1].norm is None
    s.goto(len(s.trace) - 1)
    assert all(n.norm is not None for n in s.grad_norms())


def test_checks_gradcheck_and_formula():
    s = Session.open("reverse")
    findings = s.run_checks()
    assert findings and all(hasattr(f, "ok") for f in findings)
    s.find("path", "lm_head")
    result = s.gradient_check(n_samples=4)
    assert result.param.startswith("lm_head") and result.rel_error.shape == (4,)
    assert s.explanation().title
    s.goto(s.trace.find_path("encoder.blocks.0.self_attn.split_heads"))
    with pytest.raises(SessionError):
        s.gradient_check()


def test_views_data():
    s = Session.open("reverse")
    table, what = s.positional_table(8)
    assert table.shape == (8, 32) and "sin" in what
    emb, vocab, name = s.embedding_table()
    assert emb.shape[0] == len(vocab) and name.endswith("tok_emb.weight")
    s.set_temperature(2.0)
    assert s.view.temperature == 2.0


@pytest.mark.parametrize("name", ["sort", "copy", "addition", "tiny-lm", "char-lm"])
def test_every_scenario_traces(name):
    s = Session.open(name)
    s.step("first_backward")
    assert s.event.phase == "backward"
    assert s.attention_map() is not None


def test_a_short_max_len_still_opens_on_an_example_and_refuses_long_input():
    from scenarios import ScenarioError, build_scenario

    scenario = build_scenario("reverse", data={"max_len": 3, "train_size": 800, "test_size": 100},
                              model={"max_len": 4})
    s = Session(scenario, scenario.build_model(), CrossEntropyLoss(0))
    assert s.source == f"example 1/3: {scenario.examples[0]!r}"
    with pytest.raises(ScenarioError, match="needs 6 positions.*max_len=4: shorten it"):
        s.trace_text("31415")


def test_shared_scale_spans_the_whole_tensor_and_every_attention_map():
    s = Session.open("reverse")
    s.new_batch()
    s.find("path", "decoder.blocks.0.self_attn.scale")
    s.view = replace(s.view, tensor="scores", head=1)
    values, _, _, _ = s.tensor_slice(s.event, "scores")
    own = s.tensor_scale(s.event, "scores", values, None)
    assert own.limit == pytest.approx(float(np.abs(values).max()))
    s.view = replace(s.view, shared_scale=True)
    shared = s.tensor_scale(s.event, "scores", values, None)
    assert shared.limit == pytest.approx(float(np.abs(s.event.tensors["scores"]).max()))
    assert shared.limit > own.limit and shared.scope == "shared across items/heads"
    # attention maps: one limit for every layer and head of the item, the mask's fill left out
    amap = s.attention_map(stage="masked")
    limit = max(float(np.abs(m.values[m.keep] if m.keep is not None else m.values).max())
                for path in s.trace.attention_paths for h in range(s.model.config.n_heads)
                for m in [s.attention_map(path, "masked", h)])
    assert s.attention_scale(amap).limit == pytest.approx(limit) and limit < 1e3
    assert s.attention_scale(s.attention_map(stage="weights")).kind == "probability"
    s.view = replace(s.view, shared_scale=False)
    assert s.attention_scale(amap).limit < limit
