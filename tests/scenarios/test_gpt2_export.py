"""`tui-tfs export CHECKPOINT --hf DIR`: a GPT-2-shaped model trained here, written as a
Hugging Face folder, loads in `transformers` with the same logits and opens here again."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from scenarios.checkpoints import open_checkpoint  # noqa: E402
from scenarios.gpt2 import open_gpt2  # noqa: E402
from tui_tfs.cli import main  # noqa: E402

GPT2_SHAPE = {"activation": '"gelu"', "norm": '"pre"', "positional": '"learned"',
              "scale_embedding": "false", "tie_embeddings": "true"}


def scenario_file(tmp_path, capsys, name: str, **changes) -> str:
    """The built-in scenario `name` as a file, its model made GPT-2-shaped (then `changes`)."""
    assert main(["show", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    settings = {**GPT2_SHAPE, **changes}
    out, in_model = [], False
    for line in lines:
        if line.startswith("["):
            in_model = line == "[model]"
        key = line.split("=")[0].strip()
        out.append(f"{key} = {settings[key]}" if in_model and key in settings else line)
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(out) + "\n")
    return str(path)


def train(tmp_path, capsys, name: str, **changes):
    checkpoint = tmp_path / f"{name}.safetensors"
    assert main(["train", scenario_file(tmp_path, capsys, name, **changes), "--steps", "20",
                 "--out", str(checkpoint)]) == 0
    capsys.readouterr()
    return checkpoint


@pytest.mark.parametrize("name, text", [("char-lm", "It is a truth universally"),
                                        ("tiny-lm", "the cat sat on the")])
def test_export_round_trips_through_transformers(tmp_path, capsys, name, text):
    checkpoint = train(tmp_path, capsys, name)
    folder = tmp_path / "hf"
    assert main(["export", str(checkpoint), "--hf", str(folder)]) == 0
    trained = open_checkpoint(checkpoint)
    ids = trained.tokenizer.encode(text)
    hf_ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids
    assert hf_ids == ids
    assert Tokenizer.from_file(str(folder / "tokenizer.json")).decode(ids) == text
    ours = trained.model.forward(np.array([ids]))
    reference = transformers.GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager")
    with torch.no_grad():
        theirs = reference.eval()(torch.tensor([ids])).logits.numpy()
    assert np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)) <= 1e-5
    reopened = open_gpt2(folder).model  # and back into the engine: the same arrays
    for mine, back in zip(trained.model.params(), reopened.params()):
        assert mine.name == back.name and np.array_equal(mine.data, back.data)


def test_a_config_gpt2_lacks_is_named(tmp_path, capsys):
    checkpoint = train(tmp_path, capsys, "tiny-lm", scale_embedding="true")
    assert main(["export", str(checkpoint), "--hf", str(tmp_path / "hf")]) == 2
    error = capsys.readouterr().err
    assert "scale_embedding" in error and "Traceback" not in error
    assert not (tmp_path / "hf").exists()


def test_export_never_overwrites(tmp_path, capsys):
    checkpoint = train(tmp_path, capsys, "tiny-lm")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"keep": 1}))
    assert main(["export", str(checkpoint), "--hf", str(folder)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert json.loads((folder / "config.json").read_text()) == {"keep": 1}
