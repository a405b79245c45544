"""`tui-tfs explore DIR` on a Hugging Face GPT-2 folder: the session traces a typed prompt with
BPE token labels, and the explorer opens on it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))
from gpt2_folders import make_folder  # noqa: E402

from conftest import drive, screen_text  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("gpt2") / "tiny-gpt2")


def test_session_traces_a_typed_prompt_with_bpe_labels(folder):
    from tui_tfs.session import Session

    session = Session.open(str(folder))
    assert session.model.config.positional == "learned" and session.model.config.norm == "pre"
    trace = session.trace_text("It is a truth universally acknowledged")
    ids = session.scenario.tokenizer.encode("It is a truth universally acknowledged")
    assert trace.batch.tgt_in.tolist() == [ids[:-1]]
    assert session.source == "your input: 'It is a truth universally acknowledged'"
    words = [session.scenario.tokenizer.label(i) for i in ids]
    assert any(w.startswith("␣") for w in words)
    assert trace.tgt_tokens[0] == words[:-1]
    assert len(trace) > 0 and session.trace.loss > 0
    attention = session.attention_map("blocks.1.self_attn")  # the map's labels are BPE pieces
    assert attention.rows == words[:-1] and attention.cols == words[:-1]


def test_explorer_opens_the_folder(folder, make_app):
    seen = {}

    async def look(pilot):
        seen["screen"] = screen_text(pilot.app)

    app = drive(make_app(None, path=str(folder)), look)
    assert app.session is not None and app.session.name == "tiny-gpt2"
    assert "tiny-gpt2" in seen["screen"]


def test_cli_names_an_unsupported_setting(folder, tmp_path, capsys):
    from tui_tfs.cli import main

    bad = tmp_path / "bad"
    bad.mkdir()
    for file in folder.iterdir():
        text = file.read_bytes()
        if file.name == "config.json":
            text = text.replace(b'"gelu_new"', b'"relu"')
        (bad / file.name).write_bytes(text)
    assert main(["explore", str(bad)]) == 2
    error = capsys.readouterr().err
    assert "activation_function" in error and "relu" in error and "Traceback" not in error


def test_training_is_refused_with_a_message(folder, make_app):
    from tui_tfs.screens.training import TrainingScreen

    app = drive(make_app(None, path=str(folder)), "ctrl+t")
    assert not any(isinstance(screen, TrainingScreen) for screen in app.screen_stack)
    assert any("not to train" in str(n.message) for n in app._notifications)


@pytest.mark.parametrize("ascii, space", [(False, "␣"), (True, "_")])
def test_logit_lens_on_the_folder_reads_bpe_pieces(folder, make_app, ascii, space):
    from engine.trace.logit_lens import logit_lens
    from tui_tfs.widgets.logit_lens import LogitLensView

    seen = {}

    async def look(pilot):
        seen["lens"] = pilot.app.screen.query_one(LogitLensView).text

    app = drive(make_app(None, path=str(folder), ascii=ascii), "W", look, size=(80, 23))
    lines = seen["lens"].splitlines()
    layers = [line.split()[0] for line in lines if line.startswith(("embed", "L"))]
    assert layers == ["embed", "L1", "L2"]  # 2 blocks: the last row is the output
    assert any(line.startswith("L2 out") for line in lines)
    reads = next(line for line in lines if line.startswith("reads"))
    tokenizer = app.session.scenario.tokenizer
    lens = logit_lens(app.session.model, app.session.trace)
    shown = reads.split()[1:]
    assert shown == [tokenizer.label(int(i), ascii_only=ascii) for i in lens.input_ids[:len(shown)]]
    targets = next(line for line in lines if line.startswith("target")).split()[1:]
    assert targets == [tokenizer.label(int(i), ascii_only=ascii)
                       for i in lens.target_ids[:len(targets)]]
    assert any(word.startswith(space) for word in shown + targets) and "Ġ" not in seen["lens"]


def test_vocabulary_labels_are_made_once_per_tokenizer(folder, make_app, monkeypatch):
    """The tensor view over the vocabulary (the logits) asks for every token's label on each
    redraw: the labels are made on the first and shared after."""
    from scenarios.bpe import BpeTokenizer

    calls = []
    label = BpeTokenizer.label
    monkeypatch.setattr(BpeTokenizer, "label",
                        lambda self, i, ascii_only=False: calls.append(ascii_only) or
                        label(self, i, ascii_only=ascii_only))
    seen = {}

    async def at_logits(pilot):
        session = pilot.app.session
        session.goto(next(e.index for e in session.trace.events if e.path == "lm_head"))
        pilot.app.screen.observe()
        await pilot.pause()
        calls.clear()

    async def count(pilot):
        seen["vocab"] = len(pilot.app.session.scenario.tokenizer.vocab)
        seen["calls"] = calls.count(False)
        seen["labels"] = pilot.app.session.vocab_labels()

    drive(make_app(None, path=str(folder)), at_logits, "n", "p", "v", "v", "n", "p", count)
    assert seen["calls"] <= seen["vocab"]  # six redraws of a 400-token axis: made once
    fresh = BpeTokenizer.from_folder(folder)
    assert seen["labels"] == [label(fresh, i) for i in range(seen["vocab"])]


def test_picker_lists_gpt2_folders_here_and_opens_one(folder, make_app, monkeypatch, tmp_path):
    from textual.widgets import OptionList

    broken = tmp_path / "broken-gpt2"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"")
    for file in folder.iterdir():  # a copy of the folder beside the broken one
        (tmp_path / "tiny-gpt2").mkdir(exist_ok=True)
        (tmp_path / "tiny-gpt2" / file.name).write_bytes(file.read_bytes())
    monkeypatch.chdir(tmp_path)
    seen = {}

    async def pick(pilot):
        options = pilot.app.screen.query_one("#scenarios", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        seen["ids"] = ids
        seen["screen"] = screen_text(pilot.app)
        options.highlighted = ids.index(str(broken.resolve()))
        await pilot.pause()
        seen["broken"] = screen_text(pilot.app)
        options.highlighted = ids.index(str((tmp_path / "tiny-gpt2").resolve()))
        await pilot.pause()
        seen["card"] = screen_text(pilot.app)

    app = drive(make_app(None), pick, "enter", size=(80, 23))
    assert seen["ids"][-3:] == ["-gpt2", str(broken.resolve()),
                                str((tmp_path / "tiny-gpt2").resolve())]
    assert "GPT-2 folders" in seen["screen"] and "GPT-2, 2 layers" in seen["screen"]
    assert "o opens a file or a GPT-2 folder by path" in seen["screen"]
    assert "cannot open" in seen["broken"] and "config.json" in seen["broken"]
    assert "2 layers, width 48, 4 heads, 400 BPE" in seen["card"]
    assert app.session is not None and app.session.name == "tiny-gpt2"


def test_a_folder_opened_from_the_command_line_is_in_the_picker(folder, make_app, monkeypatch,
                                                                 tmp_path):
    from textual.widgets import OptionList

    monkeypatch.chdir(tmp_path)  # no folder here: only the one the app was opened on
    seen = {}

    async def look(pilot):
        options = pilot.app.screen.query_one("#scenarios", OptionList)
        seen["ids"] = [options.get_option_at_index(i).id for i in range(options.option_count)]
        seen["screen"] = screen_text(pilot.app)

    drive(make_app(None, path=str(folder)), "escape", look)
    assert seen["ids"][-2:] == ["-gpt2", str(folder.resolve())]
    assert "* open" in seen["screen"]
