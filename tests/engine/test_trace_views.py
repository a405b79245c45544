"""What a viewer labels a trace with: tokens, loss, tensor statistics and the layer tree.

The trace's order, values and gradients are proved in test_trace.py, whose helpers this uses.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.maths.recorder import BACKWARD, FORWARD
from engine.trace.trace import path_parts, tensor_stats
from test_trace import SRC, TGT_OUT, Variant, build, plain_step, record, words


def test_trace_carries_tokens_batch_and_loss():
    model = build(Variant("plain"))
    trace = record(model)
    assert trace.src_tokens == [["a", "b", "c", "d", "e"], ["f", "g", "h", "<pad>", "<pad>"]]
    assert trace.tgt_tokens == [["<s>", "e", "d", "c"], ["<s>", "h", "g", "<pad>"]]
    assert trace.target_tokens == words(TGT_OUT)
    assert np.array_equal(trace.batch.src, SRC) and np.array_equal(trace.batch.tgt_out, TGT_OUT)
    assert trace.config is model.config
    _, loss, _ = plain_step(build(Variant("plain")))
    assert trace.loss == loss and 0 < trace.loss < 10


def test_tensor_stats_count_and_skip_nan_and_inf():
    a = np.array([[0.0, 3.0, np.nan], [-4.0, np.inf, -np.inf], [0.0, 1.0, np.nan]], np.float32)
    s = tensor_stats(a)
    finite = np.array([0.0, 3.0, -4.0, 0.0, 1.0])
    assert s.shape == (3, 3) and s.dtype == "float32"
    assert (s.nan, s.inf, s.zeros) == (2, 2, 2)
    assert (s.min, s.max) == (-4.0, 3.0)
    assert s.mean == pytest.approx(finite.mean()) and s.std == pytest.approx(finite.std())
    assert s.norm == pytest.approx(np.sqrt(26.0))
    empty = tensor_stats(np.full(3, np.nan))
    assert empty.nan == 3 and np.isnan(empty.min) and empty.norm == 0.0
    ids = tensor_stats(np.array([[1, 0, 2]]))
    assert ids.dtype == "int64" and (ids.min, ids.max, ids.zeros, ids.nan) == (0.0, 2.0, 1, 0)


def test_trace_stats_on_demand_match_numpy_and_are_cached():
    model = build(Variant("plain"))
    trace = record(model)
    event = next(e for e in trace.events if e.path == "decoder.blocks.0.ffn.act")
    out = event.tensors["out"].astype(np.float64)
    s = trace.stats(event.index, "out")
    assert s.shape == (2, 4, 32) and s.dtype == "float32"
    assert s.min == out.min() == 0.0 and s.max == pytest.approx(out.max())
    assert s.mean == pytest.approx(out.mean()) and s.std == pytest.approx(out.std())
    assert s.norm == pytest.approx(np.linalg.norm(out))
    assert s.zeros == int((out == 0).sum()) > 0  # ReLU zeroes about half
    assert s.nan == s.inf == 0
    assert trace.stats(event.index, "out") is s


def test_path_parts_keep_block_numbers_with_their_stack():
    assert path_parts("decoder.blocks.1.cross_attn.q_proj") == [
        "decoder", "blocks.1", "cross_attn", "q_proj"]
    assert path_parts("blocks.10.ffn.fc1") == ["blocks.10", "ffn", "fc1"]
    assert path_parts("lm_head") == ["lm_head"]


def test_layer_tree_follows_the_paths():
    model = build(Variant("plain"))
    trace = record(model)
    root = trace.tree
    assert root.name == "model" and root.path == ""
    assert root.events == list(range(len(trace)))
    assert list(root.children) == ["encoder", "decoder", "lm_head", "loss"]
    encoder = root.children["encoder"]
    assert list(encoder.children) == ["tok_emb", "pos_enc", "emb_drop", "blocks.0", "blocks.1"]
    block = root.children["decoder"].children["blocks.1"]
    assert block.path == "decoder.blocks.1"
    assert list(block.children) == ["self_attn", "drop1", "residual1", "ln1", "cross_attn",
                                    "drop2", "residual2", "ln2", "ffn", "drop3", "residual3",
                                    "ln3"]
    assert list(block.children["cross_attn"].children) == [
        "q_proj", "k_proj", "v_proj", "split_heads", "scores", "scale", "mask", "softmax",
        "attn_drop", "attend", "merge_heads", "o_proj"]
    for node in root.walk():  # every node lists exactly the events at or under its path
        want = [e.index for e in trace.events
                if node.path == "" or e.path == node.path or e.path.startswith(node.path + ".")]
        assert node.events == want, node.path
    leaf = block.children["ffn"].children["fc1"]
    assert [trace.events[i].phase for i in leaf.events] == [FORWARD, BACKWARD]
    assert not leaf.children


def test_find_path_by_phase():
    model = build(Variant("plain"))
    trace = record(model)
    i = trace.find_path("decoder.blocks.1.cross_attn")
    assert trace.events[i].path == "decoder.blocks.1.cross_attn.q_proj"
    j = trace.find_path("decoder.blocks.1.cross_attn", BACKWARD)
    assert trace.events[j].path == "decoder.blocks.1.cross_attn.o_proj"
    assert trace.events[j].phase == BACKWARD
    assert trace.find_path("decoder.blocks.1") < i
    assert trace.find_path("decoder.blocks.7") is None
    assert trace.find_path("decoder.blocks.1.cross") is None  # whole components only
