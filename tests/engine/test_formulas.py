"""engine.trace.formulas: every key explained, ASCII forms pure, shape lines carry the trace's numbers."""
import dataclasses
import re

import numpy as np
import pytest

from engine import (BreakSwitches, DecoderOnlyConfig, EncoderDecoderConfig, Event, build_model,
                    recording)
from engine.trace.formulas import ENTRIES, KEYS, Explanation, explain, formula
from engine.maths.facts import facts_by_path
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import Recorder

B, S, T, D, H, F, V = 2, 7, 4, 16, 2, 32, 12  # head width K = D / H = 8
SMALL = dict(vocab_size=V, d_model=D, n_heads=H, d_ff=F, n_layers=1, dropout=0.1, seed=3)


def record(config, train=True):
    """Forward + loss + backward of one padded batch, recorded."""
    model = build_model(config)
    model.train(train)
    rng = np.random.default_rng(0)
    src = rng.integers(1, V, (B, S))
    src[1, 5:] = 0  # padding in the source
    tgt_in, tgt_out = rng.integers(1, V, (B, T)), rng.integers(1, V, (B, T))
    tgt_in[1, 3:] = tgt_out[1, 3:] = 0
    loss_fn = CrossEntropyLoss(ignore_id=0, label_smoothing=0.1)
    # the facts the model declares (a tied head's embedding) as record_step passes them
    with recording(Recorder(facts=facts_by_path([model, loss_fn]))) as rec:
        is_enc_dec = isinstance(config, EncoderDecoderConfig)
        logits = model.forward(src, tgt_in) if is_enc_dec else model.forward(tgt_in)
        loss_fn.forward(logits, tgt_out)
        model.backward(loss_fn.backward())
    return rec.events


@pytest.fixture(scope="module")
def enc_dec():
    return record(EncoderDecoderConfig(**SMALL))


@pytest.fixture(scope="module")
def dec_only():
    """The other settings: GELU, learned positions, tied output, pre-LN."""
    return record(DecoderOnlyConfig(**SMALL, activation="gelu", positional="learned",
                                    tie_embeddings=True, norm="pre"))


@pytest.fixture(scope="module")
def broken():
    breaks = BreakSwitches(no_scaling=True, softmax_wrong_axis=True, no_residual=True,
                           no_positional=True)
    return record(DecoderOnlyConfig(**SMALL, breaks=breaks))


def first(events, path_end, key):
    return next(e for e in events if e.path.endswith(path_end) and e.formula == key)


def line(events, path_end, key):
    """The shape line of the first event at a path ending in `path_end` with formula `key`."""
    return explain(first(events, path_end, key)).shapes


# -- the table ----------------------------------------------------------------------------------
def test_keys_cover_forward_and_backward_of_every_op():
    forward = [k for k in KEYS if not k.endswith((".backward", ".update"))]
    assert set(forward) == {"embedding", "positional", "dropout", "residual", "layernorm", "linear",
                            "logits", "split_heads", "scores", "scale", "mask", "softmax",
                            "attend", "merge_heads", "relu", "gelu", "output_softmax",
                            "cross_entropy"}
    assert [k for k in KEYS if k.endswith(".backward")] == [f"{k}.backward" for k in forward]


@pytest.mark.parametrize("key", KEYS)
def test_every_key_has_a_specific_entry(key):
    entry = ENTRIES[key]
    assert entry.title and entry.unicode and entry.ascii and entry.text
    assert entry.ascii.isascii() and entry.title.isascii() and entry.text.isascii()
    sentences = len(re.findall(r"[.!?](?:\s|$)", entry.text))
    assert 2 <= sentences <= 3, f"{key}: {sentences} sentences"


def test_variants_belong_to_known_keys_and_are_ascii():
    for name, entry in ENTRIES.items():
        assert name.split(":")[0] in KEYS
        assert entry.ascii.isascii() and entry.text.isascii() and entry.title.isascii()


def test_unicode_forms_use_math_symbols():
    assert "ᵀ" in ENTRIES["scores"].unicode and "^T" in ENTRIES["scores"].ascii
    assert "√" in ENTRIES["scale"].unicode and "sqrt" in ENTRIES["scale"].ascii
    assert "⊙" in ENTRIES["softmax.backward"].unicode and "Σ" in ENTRIES["softmax.backward"].unicode


# -- real traces --------------------------------------------------------------------------------
@pytest.mark.parametrize("trace", ["enc_dec", "dec_only", "broken"])
def test_every_event_gets_a_specific_ascii_explanation_with_its_shapes(trace, request):
    for event in request.getfixturevalue(trace):
        x = explain(event)
        assert not x.generic and x.key == event.formula and x.key in KEYS, event.path
        assert x.formula_ascii.isascii() and x.shapes.isascii() and x.text.isascii(), event.path
        shapes = {"[" + ",".join(map(str, a.shape)) + "]" for a in event.tensors.values()}
        assert any(s in x.shapes for s in shapes - {"[]"}), (event.path, x.shapes)


def test_the_engine_emits_exactly_the_known_keys(enc_dec, dec_only):
    seen = {e.formula for e in enc_dec + dec_only}
    assert seen <= set(KEYS)
    # the vocabulary softmax's backward is folded into cross_entropy.backward (p - q); the
    # optimizer's update keys come from traced training steps (tests/engine/test_update_events.py)
    assert set(KEYS) - seen == {"output_softmax.backward", "adam.update", "adamw.update",
                                "sgd.update"}


def test_attention_lines_carry_the_real_shapes(enc_dec):
    self_scores = line(enc_dec, "decoder.blocks.0.self_attn.scores", "scores")
    assert "[2,2,4,8] x [2,2,8,4] -> [2,2,4,4]" in self_scores
    cross = line(enc_dec, "cross_attn.scores", "scores")
    assert "Q K^T : [2,2,4,8] x [2,2,8,7] -> [2,2,4,7]" in cross
    assert "4 queries x 7 keys" in cross
    scale = line(enc_dec, "cross_attn.scale", "scale")
    assert "/ sqrt(8)" in scale and "0.3536" in scale
    split = line(enc_dec, "cross_attn.split_heads", "split_heads")
    assert "q [2,4,16] -> [2,4,2,8] -> [2,2,4,8]" in split and "[2,7,16] -> [2,2,7,8]" in split
    attend = line(enc_dec, "cross_attn.attend", "attend")
    assert "[2,2,4,7] x [2,2,7,8] -> [2,2,4,8]" in attend
    softmax = explain(first(enc_dec, "cross_attn.softmax", "softmax"))
    assert "axis=-1" in softmax.shapes and "7 keys" in softmax.shapes and softmax.variant == ""


def test_mask_line_counts_the_hidden_scores(enc_dec):
    for path in ("encoder.blocks.0.self_attn.mask", "decoder.blocks.0.self_attn.mask"):
        event = first(enc_dec, path, "mask")
        scaled, keep = event.tensors["scaled"], event.tensors["keep"]
        hidden = int((~np.broadcast_to(keep, scaled.shape)).sum())
        assert f"({hidden} of {scaled.size} hidden" in explain(event).shapes
    assert "padding keys" in line(enc_dec, "encoder.blocks.0.self_attn.mask", "mask")
    assert "after each query" in line(enc_dec, "decoder.blocks.0.self_attn.mask", "mask")


def test_settings_appear_in_the_shape_lines(enc_dec):
    emb = line(enc_dec, "encoder.tok_emb", "embedding")
    assert "sqrt(16)" in emb and "ids [2,7]" in emb and "[12,16]" in emb and "scale 4" in emb
    drop = first(enc_dec, "encoder.emb_drop", "dropout")
    zeroed = int((drop.tensors["mask"] == 0).sum())
    assert "1 - 0.1" in explain(drop).shapes
    assert f"{zeroed} of {B * S * D} zeroed" in explain(drop).shapes
    assert "1e-05" in line(enc_dec, "ln1", "layernorm")
    fc1 = line(enc_dec, "decoder.blocks.0.ffn.fc1", "linear")
    assert "out = x W + b : [2,4,16] x [16,32] + [32] -> [2,4,32]" in fc1
    ce = first(enc_dec, "loss.cross_entropy", "cross_entropy")
    loss_line = explain(ce).shapes
    assert f"{ce.attrs['n_tokens']} tokens" in loss_line and "label smoothing 0.1" in loss_line
    assert f"{float(ce.tensors['loss']):.4g}" in loss_line


def test_backward_lines_name_what_is_summed(enc_dec):
    lm = line(enc_dec, "lm_head", "logits.backward")
    assert "[2,4,12] x [12,16] -> [2,4,16]" in lm
    assert "[16,8] x [8,12] -> [16,12]" in lm and "2*4 = 8 positions" in lm
    ln = line(enc_dec, "encoder.blocks.0.ln1", "layernorm.backward")
    assert "2*7 = 14 positions" in ln
    scores = line(enc_dec, "cross_attn.scores", "scores.backward")
    assert "d_K = d_scores^T Q : [2,2,7,4] x [2,2,4,8] -> [2,2,7,8]" in scores
    ce = first(enc_dec, "loss.cross_entropy", "cross_entropy.backward")
    assert f"/ {ce.attrs['n_tokens']}" in explain(ce).shapes
    assert "1 padding row is zero" in explain(ce).shapes
    # the scale backward reads the real factor off the gradients it recorded
    assert "/ sqrt(8)" in line(enc_dec, "cross_attn.scale", "scale.backward")
    res = explain(first(enc_dec, "residual1", "residual.backward"))
    assert res.variant == "" and "d_x = d_out, d_fx = d_out" in res.shapes


def test_other_settings_pick_their_variants(dec_only):
    tied = explain(first(dec_only, "lm_head", "logits"))
    assert tied.variant == "tied" and tied.formula_ascii == "logits = x E^T"
    assert "[2,4,16] x [16,12] -> [2,4,12]" in tied.shapes
    tied_back = explain(first(dec_only, "lm_head", "logits.backward"))
    assert tied_back.variant == "tied" and "grad E +=" in tied_back.shapes
    assert "learned" in line(dec_only, "pos_emb", "positional")
    assert "grad P[0:4]" in line(dec_only, "pos_emb", "positional.backward")
    gelu = explain(first(dec_only, "ffn.act", "gelu"))
    assert "tanh" in gelu.formula_ascii and "[2,4,32] -> [2,4,32]" in gelu.shapes


def test_break_switches_change_formula_and_text(broken):
    cases = {("residual1", "residual"): "out = f(x)", ("scale", "scale"): "scaled = scores",
                      ("pos_enc", "positional"): "out = x",
             ("residual1", "residual.backward"): "d_fx = d_out",
             ("scale", "scale.backward"): "d_scores = d_scaled"}
    for (path, key), rule in cases.items():
        x = explain(first(broken, path, key))
        assert x.variant == "off" and x.formula_ascii.startswith(rule), key
        assert x.text != ENTRIES[key].text
    assert "no_scaling" in line(broken, "scale", "scale")
    soft = explain(first(broken, "softmax", "softmax"))
    assert soft.variant == "queries" and "axis=-2" in soft.shapes and "queries" in soft.shapes


def test_eval_mode_dropout_is_explained_as_inactive():
    events = record(DecoderOnlyConfig(**SMALL), train=False)
    fwd = explain(first(events, "emb_drop", "dropout"))
    back = explain(first(events, "emb_drop", "dropout.backward"))
    assert fwd.variant == back.variant == "off"
    assert fwd.formula_ascii == "out = x" and back.formula_ascii == "d_x = d_out"
    assert "inactive" in fwd.shapes


# -- the API ------------------------------------------------------------------------------------
def test_formula_picks_the_form(enc_dec):
    event = first(enc_dec, "self_attn.scores", "scores")
    assert formula(event, ascii=True) == "scores = Q K^T"
    assert formula(event, ascii=False) == "scores = Q Kᵀ"
    assert formula(event) == explain(event).formula_unicode


def test_unknown_key_gets_a_generic_explanation():
    event = Event(0, "forward", "model.rotary", "rotary", {"x": np.zeros((2, 3))}, "rotary")
    x = explain(event)
    assert x.generic and x.key == "rotary" and "rotary" in x.title and "rotary" in x.text
    assert x.shapes == "x [2,3]"
    assert formula(event, ascii=True) == "rotary"


def test_an_odd_event_never_raises():
    event = Event(0, "forward", "x.scores", "scores", {"scores": np.zeros((1, 1, 2, 2))}, "scores")
    x = explain(event)  # "q" and "k" missing: the shape line falls back to the tensor list
    assert not x.generic and x.shapes == "scores [1,1,2,2]"
    empty = explain(Event(1, "backward", "p", "softmax", {}, ""))
    assert empty.key == "softmax.backward" and empty.shapes == "no tensors"


def test_explanation_is_frozen(enc_dec):
    x = explain(enc_dec[0])
    assert isinstance(x, Explanation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.title = "changed"
