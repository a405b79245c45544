"""The shipped pairs scenario (scenarios/data/dates.toml) through every command: show, train,
eval, generate, and the explorer opened on the file."""
from __future__ import annotations

from importlib import resources

import pytest

from conftest import drive, screen_text
from scenarios import load_scenario
from tui_tfs.cli import main
from tui_tfs.screens import ExplorerScreen, PromptScreen

pytestmark = pytest.mark.timeout(300)

DATES = str(resources.files("scenarios").joinpath("data", "dates.toml"))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_train_eval_generate(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "show", DATES)
    assert code == 0 and 'task = "pairs"' in out and 'tokens = "char"' in out
    assert "dates.tsv" in out and "steps = 400" in out

    checkpoint = tmp_path / "dates.safetensors"
    code, out, err = run_cli(capsys, "train", DATES, "--steps", "60", "--out", str(checkpoint))
    assert code == 0, err
    assert "dates: Write a date out" in out and "encoder-decoder" in out and "exact" in out

    held_out = load_scenario(DATES).data.held_out
    code, out, err = run_cli(capsys, "eval", str(checkpoint), "--n", "3")
    assert code == 0, err
    assert "dates, step 60" in out and held_out[0].source in out and held_out[0].target in out
    assert "held-out (200): exact match" in out

    code, out, err = run_cli(capsys, "generate", str(checkpoint), "--prompt", "1999-12-31")
    assert code == 0, err
    assert out.startswith("1999-12-31  ->  ")
    code, _, err = run_cli(capsys, "generate", str(checkpoint), "--prompt", "1999/12/31")
    assert code != 0 and "'/' is not in the vocabulary" in err


def test_the_explorer_opens_the_file_and_takes_inputs_from_it(make_app):
    scenario = load_scenario(DATES)
    trained_on = scenario.data.train[5]
    seen = {}

    def look(app):
        seen["screen"] = app.screen
        seen["text"] = screen_text(app)
        seen["example"] = app.session.trace.src_tokens[0]

    async def type_input(pilot):
        await pilot.press("I")
        await pilot.pause()
        assert isinstance(pilot.app.screen, PromptScreen)
        pilot.app.screen.query_one("Input").value = trained_on.source
        await pilot.press("enter")
        await pilot.pause()
        seen["own"] = pilot.app.session.trace.target_tokens[0]

    async def look_now(pilot):
        look(pilot.app)

    drive(make_app(scenario=None, path=DATES), look_now, type_input)
    assert isinstance(seen["screen"], ExplorerScreen)
    assert "dates" in seen["text"] and "forward 1/" in seen["text"]
    assert "".join(seen["example"]) == scenario.examples[0] == scenario.data.held_out[0].source
    spaces_shown = trained_on.target.replace(" ", "\u2423")  # a space token is drawn as ␣
    assert "".join(seen["own"]) == spaces_shown + "</s>", "the file's answer to its input"
