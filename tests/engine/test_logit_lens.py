"""The logit lens: each block's residual stream through the final LayerNorm and the head.

What is proved here, in float64 on pre-LN (final LayerNorm, tied head) and post-LN (no final
norm, its own head) decoder-only models:
- the last row is the model's own output: its logits equal the traced logits and its
  probabilities the loss's softmax;
- row l equals the output of the same model cut after block l (a model of l blocks given the
  first l blocks' weights), and row 0 a by-hand embedding lookup + LayerNorm + head;
- the top tokens are the most likely ones, in order, and the target's rank counts the tokens
  more likely than it;
- an encoder-decoder model gets a LensError that says why.
(Against `transformers`' hidden_states + ln_f + lm_head: tests/scenarios/test_gpt2_lens.py.)

Shapes: L blocks, T positions, D width, V vocabulary.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.maths.layers.embedding import sinusoid_table
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import FORWARD
from engine.trace.logit_lens import (EMBEDDINGS, LensError, lens_logits, logit_lens,
                                     residual_streams)
from engine.trace.trace import Batch, record_step

IDS = np.array([[1, 5, 9, 3, 7, 2, 8], [4, 4, 6, 11, 10, 0, 0]])  # (B=2, T=7); row 1 padded
NEXT = np.array([[5, 9, 3, 7, 2, 8, 6], [4, 6, 11, 10, 3, 0, 0]])
VARIANTS = {
    "pre-gelu-learned-tied": dict(norm="pre", activation="gelu", positional="learned",
                                  tie_embeddings=True),
    "post-relu-untied": dict(norm="post", activation="relu", positional="sinusoidal",
                             tie_embeddings=False),
}


def _config(variant: str, n_layers: int = 3) -> DecoderOnlyConfig:
    return DecoderOnlyConfig(vocab_size=12, d_model=16, n_heads=2, d_ff=32, n_layers=n_layers,
                             max_len=8, pad_id=0, dropout=0.0, dtype="float64", seed=3,
                             **VARIANTS[variant])


def _traced(variant: str):
    model = build_model(_config(variant))
    tokens = [[str(i) for i in row] for row in IDS]
    trace = record_step(model, CrossEntropyLoss(ignore_id=0), Batch(None, IDS, NEXT), None,
                        tokens, [[str(i) for i in row] for row in NEXT])
    return model, trace


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("item", [0, 1])
def test_the_last_row_is_the_models_output(variant, item):
    model, trace = _traced(variant)
    logits = next(e for e in trace.events if e.phase == FORWARD and e.path == "lm_head")
    probs = next(e for e in trace.events if e.phase == FORWARD and e.op == "output_softmax")
    streams = residual_streams(model, trace, item)  # (L+1, T, D)
    assert streams.shape == (4, 7, 16)
    last = lens_logits(model, streams[-1])  # (T, V)
    np.testing.assert_allclose(last, logits.tensors["out"][item], rtol=1e-13, atol=1e-13)
    lens = logit_lens(model, trace, item, top=12)
    assert lens.rows == (EMBEDDINGS, "blocks.0", "blocks.1", "blocks.2")
    assert lens.final_norm == (variant.startswith("pre"))
    # every token kept (top=12=V): the last row holds the model's whole distribution
    theirs = probs.tensors["probs"][item]  # (T, V)
    ours = np.zeros_like(theirs)
    np.put_along_axis(ours, lens.top_ids[-1], lens.top_probs[-1], -1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_row_is_the_model_cut_after_that_block(variant):
    model, trace = _traced(variant)
    weights = model.state_dict()
    lens = logit_lens(model, trace, 0, top=12)
    streams = residual_streams(model, trace, 0)
    for blocks in (1, 2):
        cut = build_model(replace(_config(variant), n_layers=blocks))
        cut.load_state_dict({name: value for name, value in weights.items()
                             if name in cut.state_dict()})
        expected = _softmax(cut.forward(IDS[:1])[0])  # (T, V)
        np.testing.assert_allclose(_softmax(lens_logits(model, streams[blocks])), expected,
                                   rtol=1e-12, atol=1e-15)
        order = np.argsort(-expected, axis=-1, kind="stable")  # (T, V)
        np.testing.assert_array_equal(lens.top_ids[blocks], order)
        rank = 1 + (expected > expected[np.arange(7), NEXT[0]][:, None]).sum(axis=-1)
        np.testing.assert_array_equal(lens.target_rank[blocks], rank)
    # row 0 by hand: the embeddings (scaled rows + positions), LayerNorm if pre-LN, the head
    c = model.config
    scale = np.sqrt(c.d_model) if c.scale_embedding else 1.0
    x = weights["tok_emb.weight"][IDS[0]] * scale  # (T, D)
    x = x + (weights["pos_emb.weight"][:7] if c.positional == "learned"
             else sinusoid_table(7, c.d_model))
    if c.norm == "pre":
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        x = (x - mean) / np.sqrt(var + c.ln_eps) * weights["ln_f.gamma"] + weights["ln_f.beta"]
        logits = x @ weights["tok_emb.weight"].T  # the tied head
    else:
        logits = x @ weights["lm_head.w"] + weights["lm_head.b"]
    np.testing.assert_allclose(lens.top_probs[0], np.take_along_axis(
        _softmax(logits), lens.top_ids[0], -1), rtol=1e-12, atol=1e-15)


def test_padding_has_no_target_and_top_is_ordered():
    model, trace = _traced("pre-gelu-learned-tied")
    lens = logit_lens(model, trace, 1, top=3)
    assert lens.top_ids.shape == (4, 7, 3) and lens.positions == 7
    assert (np.diff(lens.top_probs, axis=-1) <= 0).all()
    assert (lens.target_rank[:, 5:] == 0).all() and np.isnan(lens.target_probs[:, 5:]).all()
    assert (lens.target_rank[:, :5] >= 1).all()
    np.testing.assert_array_equal(lens.input_ids, IDS[1])


def test_an_encoder_decoder_is_refused():
    model = build_model(EncoderDecoderConfig(vocab_size=12, d_model=16, n_heads=2, d_ff=32,
                                             n_layers=1, max_len=8, pad_id=0))
    with pytest.raises(LensError, match="decoder-only"):
        logit_lens(model, None)
