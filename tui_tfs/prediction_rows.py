"""Held-out predictions as rows to read: each example's target and the model's tokens, the
wrong ones marked, and its verdict. `tui-tfs eval` prints them as a table; the training screen
lays them out in its panel (widgets/predictions.py). Pure: predictions in, Rich `Text` out.

Tasks with one right answer get a verdict per example (right or wrong as a whole). Language
models are scored as their loss is, teacher forced: each token is the model's guess given the
true text before it, and the verdict counts the right guesses, "41/64". A 64-character window
is never right as a whole, so a whole-row verdict would mark every row wrong.

    rows = prediction_rows(predictions, word_level=False, style=Style())
    rows[0].verdict                   # "41/64"
    marked_output(rows[0], style)     # the guesses, the wrong ones marked
"""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from .style import Style

MARK = {False: ("✓", "✗"), True: ("ok", "X")}
NEWLINE = {False: "⏎", True: "~"}  # a newline token, drawn so a row stays one row
SPACE = {False: "␣", True: "_"}  # a space guessed where the text has something else
SPECIAL = {False: "▯", True: "*"}  # a special token at character level (one cell, like a char)


@dataclass
class PredictionRow:
    """One held-out example as shown."""

    number: int  # counted from 1
    source: str  # the input as shown ("" when teacher forced: the text itself is the input)
    target: list[str]  # the right tokens, as shown
    output: list[str]  # the model's tokens, as shown
    right: list[bool]  # per output token: the target has the same token at that place
    verdict: str  # "✓" / "✗" (one right answer), or "hits/len" (teacher forced)
    correct: bool  # the whole output is right (teacher forced: every guess)

    @property
    def hits(self) -> int:
        return sum(self.right)


def show_token(token: str, word_level: bool, style: Style) -> str:
    """A token as it reads in a row. Character level: one cell per token, so the guesses line
    up under the text: a newline and a special token (<pad>, </s>) are drawn as one glyph."""
    if word_level:
        return token
    return token.replace("\n", NEWLINE[style.ascii]) if len(token) == 1 else SPECIAL[style.ascii]


def special_note(predictions, word_level: bool, style: Style) -> str:
    """What the special-token glyph means, when a character-level row shows one ('' if not)."""
    if word_level or not any(len(t) > 1 for p in predictions
                             for t in p.output_tokens + p.target_tokens):
        return ""
    return f"{SPECIAL[style.ascii]} a special token (<pad>, <s>, </s>)"


def prediction_rows(predictions, word_level: bool, style: Style) -> list[PredictionRow]:
    """Rows for `predictions` (scenarios.Prediction), numbered from 1."""
    good, bad = MARK[style.ascii]
    rows = []
    for number, p in enumerate(predictions, 1):
        right = [k < len(p.target_tokens) and p.target_tokens[k] == token
                 for k, token in enumerate(p.output_tokens)]
        if p.teacher_forced:
            verdict = f"{sum(right)}/{len(p.target_tokens)}"
        else:
            verdict = good if p.correct else bad
        rows.append(PredictionRow(
            number, "" if p.teacher_forced else p.source.replace("\n", NEWLINE[style.ascii]),
            [show_token(t, word_level, style) for t in p.target_tokens],
            [show_token(t, word_level, style) for t in p.output_tokens],
            right, verdict, p.correct))
    return rows


def token_style(right: bool, style: Style) -> str:
    """Right tokens plain (green in colour); wrong ones in reverse video, which shows even a
    wrongly guessed space and needs no colour."""
    if right:
        return "green" if style.color else ""
    return "bold white on red" if style.color else "reverse"


def guess_shown(token: str, right: bool, style: Style) -> str:
    """A guessed token as shown: a wrong guess of a space is drawn as a visible space mark."""
    return SPACE[style.ascii] if token == " " and not right else token


def marked_output(row: PredictionRow, style: Style, sep: str) -> Text:
    """The model's tokens joined by `sep`, each wrong one marked."""
    text = Text()
    for k, (token, right) in enumerate(zip(row.output, row.right)):
        if k:
            text.append(sep)
        text.append(guess_shown(token, right, style), style=token_style(right, style))
    return text


def verdict_style(row: PredictionRow, style: Style) -> str:
    if not style.color:
        return "bold"
    return "green" if row.correct else ("bold red" if not row.target or row.hits == 0 else "")
