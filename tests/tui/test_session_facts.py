"""The session labels and groups what it shows by the facts the events carry, and reads the
trace's one path index."""
import dataclasses

import numpy as np

from engine.maths.batch import Batch
from engine.trace import trace as trace_module
from tui_tfs.session import Session


def test_cross_attention_keys_and_values_are_labelled_with_source_tokens():
    """Source and target of the same length: only the facts tell which stream the rows of a
    cross-attention key projection are (a length match would pick the target)."""
    s = Session.open("reverse")
    b = s.trace.batch  # source (1, 5), target (1, 6)
    src = np.concatenate([b.src, b.src[:, :1]], axis=1)  # (1, 6): as long as the target
    s.record(Batch(src, b.tgt_in, b.tgt_out), "source as long as the target")
    source, target = s.trace.src_tokens[0], s.trace.tgt_tokens[0]
    assert len(source) == len(target) and source != target
    cross = s.model.decoder_blocks[0].sublayers[1].inner
    for projection, stream in ((cross.k_proj, source), (cross.v_proj, source),
                               (cross.q_proj, target)):
        s.goto(s.trace.forward_at(projection.path).index)
        _, rows, _, _ = s.tensor_slice(s.event, "x")
        assert rows == stream, projection.path
    s.goto(s.trace.index.attention[cross.path]["scores"].index)
    _, rows, cols, _ = s.tensor_slice(s.event, "scores")
    assert (rows, cols) == (target, source)
    assert s.embedding_table()[2] == "decoder.tok_emb.weight"
    s.goto(s.trace.forward_at(s.model.encoder_blocks[0].sublayers[0].inner.q_proj.path).index)
    assert s.embedding_table()[2] == "encoder.tok_emb.weight"


def test_gradient_norms_group_each_attention_layer_in_both_models():
    """q, k, v and o of one attention layer make one row, in a decoder-only model too."""
    for name, block in (("reverse", "decoder_blocks"), ("char-lm", "blocks")):
        s = Session.open(name)
        s.goto(len(s.trace) - 1)
        rows = {n.path: n.norm for n in s.grad_norms()}
        attn = getattr(s.model, block)[0].sublayers[0].inner
        assert attn.path in rows and rows[attn.path] > 0
        assert not any(path.startswith(attn.path + ".") for path in rows), sorted(rows)


def test_the_session_reads_the_traces_one_path_index(monkeypatch):
    built = []
    original = trace_module.PathIndex.__init__

    def counting(self, events):
        built.append(len(events))
        original(self, events)

    monkeypatch.setattr(trace_module.PathIndex, "__init__", counting)
    s = Session.open("reverse")
    for _ in range(40):
        s.step("next")
        s.counterpart()
    s.view = dataclasses.replace(s.view, gradient=True)
    s.shown_tensor()
    s.attention_map()
    s.run_checks()
    first = len(s.trace)
    assert built == [first]
    s.toggle_break("no_causal_mask")  # a new trace (no mask events): one new index
    s.step("first_backward")
    s.counterpart()
    assert built == [first, len(s.trace)]
