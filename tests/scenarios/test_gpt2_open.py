"""A GPT-2 folder made by `transformers` opens as the engine's decoder-only model and computes
the same logits and the same parameter gradients as `transformers` does."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from scenarios import ScenarioError  # noqa: E402
from scenarios.gpt2 import PREFIX, engine_to_gpt2_names, open_gpt2  # noqa: E402

from gpt2_folders import hf_model, make_folder  # noqa: E402

TEXT = "It is a truth universally acknowledged, that a single man"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("gpt2") / "small", n_layer=3)


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("float64", 1e-10)])
def test_logits_equal_transformers(folder, dtype, tolerance):
    opened = open_gpt2(folder, dtype=dtype)
    ids = np.array([opened.tokenizer.encode(TEXT)[:20]])
    assert ids.shape[1] >= 10  # the BPE merges words: fewer ids than characters
    ours = opened.model.forward(ids)
    with torch.no_grad():
        theirs = hf_model(folder, dtype)(torch.from_numpy(ids)).logits.numpy()
    assert ours.dtype == np.dtype(dtype)
    assert _relative(ours, theirs) <= tolerance


def test_every_gradient_equals_torch_autograd(folder):
    opened = open_gpt2(folder, dtype="float64")
    model = opened.model
    model.train()  # dropout is 0: train mode only keeps what backward needs
    ids = np.array([opened.tokenizer.encode(TEXT)[:16], opened.tokenizer.encode(TEXT[9:])[:16]])
    weights = np.random.default_rng(1).standard_normal((*ids.shape, model.config.vocab_size))
    model.zero_grad()
    model.forward(ids)
    model.backward(weights)  # loss = sum(logits * weights): d_logits = weights
    reference = hf_model(folder, "float64")
    loss = (reference(torch.from_numpy(ids)).logits * torch.from_numpy(weights)).sum()
    loss.backward()
    grads = {name.removeprefix(PREFIX): p.grad.numpy() for name, p in reference.named_parameters()}
    params = {p.name: p for p in model.params()}
    largest = max(float(np.max(np.abs(g))) for g in grads.values())
    checked = 0
    for name, (theirs, columns) in engine_to_gpt2_names(model.config).items():
        expected = grads[theirs] if columns is None else grads[theirs][..., columns]
        if name.endswith("k_proj.b"):
            # exactly 0 in exact arithmetic: q . b_k adds the same number to every score of a
            # row, which softmax ignores; both sides hold rounding noise (~1e-18)
            assert np.max(np.abs(params[name].grad - expected)) <= 1e-8 * largest, name
        else:
            assert _relative(params[name].grad, expected) <= 1e-8, name
        checked += 1
    assert checked == len(params) == 4 + 16 * 3


def test_labels_show_the_leading_space(folder):
    tokenizer = open_gpt2(folder).tokenizer
    ids = tokenizer.encode(" the house")
    assert tokenizer.decode(ids) == " the house"
    labels = [tokenizer.label(i) for i in ids]
    assert labels[0].startswith("␣") and "Ġ" not in "".join(labels)
    assert "".join(labels).replace("␣", " ") == " the house"
    assert "".join(tokenizer.label(i, ascii_only=True) for i in ids) == "_the_house"


@pytest.mark.parametrize("setting, value", [
    ("activation_function", "relu"), ("activation_function", "gelu"),
    ("scale_attn_by_inverse_layer_idx", True), ("reorder_and_upcast_attn", True),
    ("scale_attn_weights", False), ("tie_word_embeddings", False),
    ("add_cross_attention", True), ("model_type", "llama")])
def test_unsupported_setting_names_itself(folder, tmp_path, setting, value):
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    settings = json.loads((folder / "config.json").read_text())
    settings[setting] = value
    (copy / "config.json").write_text(json.dumps(settings))
    with pytest.raises(ScenarioError) as caught:
        open_gpt2(copy)
    assert setting in str(caught.value) and caught.value.key == setting


def test_missing_pieces_are_named(folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match="config.json"):
        open_gpt2(empty)
    (empty / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ScenarioError, match="tokenizer.json"):
        open_gpt2(empty)
    (empty / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())
    with pytest.raises(ScenarioError, match="model.safetensors"):
        open_gpt2(empty)


def test_greedy_generation_equals_transformers(folder):
    from scenarios.predict import complete

    opened = open_gpt2(folder)
    prompt = "It is a truth"
    completion = complete(opened.model, opened.tokenizer, "stream", prompt, max_tokens=8,
                          greedy=True)
    ids = torch.tensor([opened.tokenizer.encode(prompt)])
    theirs = hf_model(folder, "float32").generate(ids, max_new_tokens=8, do_sample=False,
                                                  pad_token_id=0)[0, ids.shape[1]:].tolist()
    assert len(theirs) == 8 and completion.text == opened.tokenizer.decode(theirs)
    assert completion.tokens == [opened.tokenizer.label(i) for i in theirs]
