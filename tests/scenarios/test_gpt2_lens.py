"""The logit lens of a GPT-2 folder equals `transformers`' own: hidden_states[l] through
ln_f and lm_head, in float64. (transformers' last hidden state already has ln_f applied: its
logits are the lens's last row.)"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from engine.maths.loss import CrossEntropyLoss  # noqa: E402
from engine.trace.logit_lens import lens_logits, logit_lens, residual_streams  # noqa: E402
from engine.trace.trace import Batch, record_step  # noqa: E402
from scenarios.gpt2 import open_gpt2  # noqa: E402

from gpt2_folders import hf_model, make_folder  # noqa: E402

TEXT = "It is a truth universally acknowledged, that a single man in possession"


def test_lens_equals_transformers_hidden_states(tmp_path):
    folder = make_folder(tmp_path / "lens", n_layer=3)
    opened = open_gpt2(folder, dtype="float64")
    ids = np.array([opened.tokenizer.encode(TEXT)[:17]])  # (1, T+1)
    batch = Batch(None, ids[:, :-1], ids[:, 1:])
    words = [[opened.tokenizer.label(i) for i in row] for row in ids]
    trace = record_step(opened.model, CrossEntropyLoss(None), batch, None,
                        [words[0][:-1]], [words[0][1:]])
    ours = lens_logits(opened.model, residual_streams(opened.model, trace))  # (L+1, T, V)
    reference = hf_model(folder, "float64")
    with torch.no_grad():
        out = reference(torch.from_numpy(batch.tgt_in), output_hidden_states=True)
        hidden = out.hidden_states  # L+1 of (1, T, D); the last one after ln_f
        theirs = [reference.lm_head(reference.transformer.ln_f(h))[0].numpy()
                  for h in hidden[:-1]] + [out.logits[0].numpy()]
    assert ours.shape[0] == len(theirs) == 4
    for row, expected in enumerate(theirs):
        scale = np.max(np.abs(expected))
        assert np.max(np.abs(ours[row] - expected)) <= 1e-10 * scale, row
    lens = logit_lens(opened.model, trace, top=3)
    probs = torch.softmax(torch.from_numpy(np.stack(theirs)), -1).numpy()  # (L+1, T, V)
    np.testing.assert_array_equal(lens.top_ids, np.argsort(-probs, -1, kind="stable")[..., :3])
    np.testing.assert_allclose(lens.top_probs, np.sort(probs, -1)[..., ::-1][..., :3],
                               rtol=1e-10)
    logits = np.stack(theirs)  # (L+1, T, V)
    target = logits[:, np.arange(ids.shape[1] - 1), ids[0, 1:]]  # (L+1, T)
    np.testing.assert_array_equal(lens.target_rank, 1 + (logits > target[..., None]).sum(-1))
    np.testing.assert_allclose(lens.target_probs,
                               probs[:, np.arange(ids.shape[1] - 1), ids[0, 1:]], rtol=1e-10)
