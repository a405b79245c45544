"""The held-out predictions panel, read as a user reads it: char-lm's 64-character windows over
the model's guesses with a per-token count, tiny-lm without an empty input column, the
encoder-decoder's input/target/model row; pure renderers and the screen through Pilot."""
from __future__ import annotations

import asyncio
import re

import pytest
from conftest import screen_text

from scenarios import Prediction
from tui_tfs.style import Style
from tui_tfs.training import Evaluation, TrainingController
from tui_tfs.widgets.predictions import predictions_text

pytestmark = pytest.mark.timeout(180)

TEXT = ('is neighbour, till Sir William thus began:\n\n"What a charming amusement for young '
        'people this is, Mr. Darcy!')


def char_window(start: int, wrong: set[int]) -> Prediction:
    """A teacher-forced char-lm row of 64 characters; the guesses at `wrong` are a space or 'x'."""
    target = list(TEXT[start:start + 64])
    output = [(" " if target[k] != " " else "x") if k in wrong else c for k, c in enumerate(target)]
    return Prediction(source="", target="".join(target), output="".join(output),
                      target_tokens=target, output_tokens=output,
                      correct=target == output, teacher_forced=True)


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("width", [76, 60, 40])
def test_char_lm_windows_read_whole_over_the_guesses_with_a_count(ascii, width):
    """Each window reads whole, its guesses aligned under it character by character, with
    "hits/64" (a 64-character guess never matches whole: every row used to be marked wrong)."""
    style = Style(ascii=ascii, color=False)
    rows = [char_window(0, {1, 5, 20, 63}), char_window(10, set()), char_window(30, set(range(64)))]
    text = predictions_text(Evaluation(48, {"loss": 2.0, "token_accuracy": 0.5}, rows),
                            False, style, width).plain
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    assert not any(mark in text for mark in ("✗", " X ")), text  # no whole-row verdicts
    newline, space = ("~", "_") if ascii else ("⏎", "␣")
    starts = [i for i, line in enumerate(lines) if re.match(r"\d+ \d+/64 ", line)]
    assert [re.match(r"(\d+) (\d+)/64", lines[i]).groups() for i in starts] == \
        [("1", "60"), ("2", "64"), ("3", "0")], text
    lead = next(line.index("target") for line in lines if line.startswith("#"))  # text column
    for n, (i, p) in enumerate(zip(starts, rows)):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        block = [line[lead:] for line in lines[i:end] if line.strip()]
        targets, guesses = block[0::2], block[1::2]
        assert "".join(t.ljust(len(g)) for t, g in zip(targets, guesses)).rstrip() == \
            p.target.replace("\n", newline).rstrip(), block
        shown = "".join(" " if c == " " and c == t else (space if c == " " else c)
                        for c, t in zip(p.output_tokens, p.target_tokens))
        assert "".join(g.ljust(len(t)) for t, g in zip(targets, guesses)).rstrip() == \
            shown.replace("\n", newline).rstrip(), block
        assert all(len(t.rstrip()) <= width - lead for t in targets)


def test_tiny_lm_table_has_no_blank_input_column_and_counts_guesses():
    """tiny-lm's table had an `input` column that was always blank."""
    from scenarios import load_scenario

    scenario = load_scenario("tiny-lm")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    ev = c.evaluate()
    text = predictions_text(ev, True, Style(ascii=True, color=False), 76).plain
    assert "input" not in text, text
    for number, p in enumerate(ev.predictions, 1):
        hits = sum(a == b for a, b in zip(p.target_tokens, p.output_tokens))
        first = re.escape(p.target_tokens[0])
        assert re.search(rf"^{number} +{hits}/{len(p.target_tokens)} +{first}", text, re.M), text


def test_answers_side_by_side_like_eval():
    """Tasks with one right answer: #, input, target, model, right or wrong, in one row each."""
    ok = Prediction("31415", "51413", "51413", list("51413"), list("51413"), True)
    wrong = Prediction("2718", "8172", "8712", list("8172"), list("8712"), False)
    text = predictions_text(Evaluation(30, {"exact_match": 0.5, "token_accuracy": 0.75},
                                       [ok, wrong]), False, Style(ascii=True, color=False)).plain
    assert re.search(r"^#  input +target +model", text, re.M), text
    assert re.search(r"^1  31415 +51413 +51413 +ok$", text, re.M), text
    assert re.search(r"^2  2718 +8172 +8712 +X$", text, re.M), text
    assert "exact 50%, tokens 75%" in text


def test_char_lm_panel_on_screen(make_app):
    """At 80x24 the panel shows char-lm's first window whole, its guesses and their count."""
    app = make_app("char-lm")

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            s = app.session
            s.training = c = TrainingController(s.scenario, s.model, eval_every=0)
            await pilot.press("ctrl+t")
            await pilot.pause()
            c.evaluate()
            app.screen.refresh_all()
            await pilot.pause()
            text = screen_text(app)
            first = c.evaluation.predictions[0]
            hits = sum(a == b for a, b in zip(first.target_tokens, first.output_tokens))
            window = first.target.replace("\n", "⏎")
            assert re.search(rf"│ 1 {hits}/64 +{re.escape(window)}", text), text
            assert "input" not in text and "✗" not in text, text

    asyncio.run(main())
