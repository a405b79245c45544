"""Held-out predictions beside their targets, refreshed at every evaluation, and the
generation panel: each generated token with its probability and the alternatives."""
from __future__ import annotations

import textwrap

from rich.text import Text
from textual.widgets import Static

from ..prediction_rows import (guess_shown, marked_output, prediction_rows, special_note,
                               token_style, verdict_style)
from ..render import fit_label
from ..style import Style


def predictions_text(evaluation, word_level: bool, style: Style, width: int = 76) -> Text:
    """The held-out examples of the latest evaluation, laid out as `tui-tfs eval` prints them
    (#, input, target, the model's tokens with the wrong ones marked, the verdict: right or
    wrong, or right next-token guesses out of the target's length). Side by side when a row
    fits `width`; else each example on two lines, the target over the model's tokens aligned
    token by token, wrapped to the width (a 64-character window of char-lm); nothing is cut."""
    text = Text(no_wrap=True, overflow="crop")
    if evaluation is None:
        text.append("held-out predictions appear at the first evaluation", style="dim")
        return text
    rows = prediction_rows(evaluation.predictions, word_level, style)
    forced = bool(evaluation.predictions) and evaluation.predictions[0].teacher_forced
    note = special_note(evaluation.predictions, word_level, style)
    summary = _summary(evaluation, forced) + (f"; {note}" if note else "")
    text.append("\n".join(textwrap.wrap(summary, width)) + "\n", style="dim")
    if not rows:
        return text
    sep = " " if word_level else ""
    header = ["#"] + ([] if forced else ["input"]) + \
        ["target", "model's next-token guesses" if forced else "model", ""]
    cells = [[str(r.number)] + ([] if forced else [r.source]) +
             [sep.join(r.target), sep.join(r.output), r.verdict] for r in rows]
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(len(header))]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        _side_by_side(text, header, widths, rows, forced, sep, style)
    else:
        _stacked(text, rows, forced, word_level, style, width)
    return text


def _summary(evaluation, forced: bool) -> str:
    m = evaluation.metrics
    if forced:
        share = f"{m['token_accuracy']:.0%} " if "token_accuracy" in m else ""
        return f"held-out at step {evaluation.step}: next-token guesses {share}right " \
               f"(given the true text)"
    parts = [f"exact {m['exact_match']:.0%}"] if "exact_match" in m else []
    parts += [f"tokens {m['token_accuracy']:.0%}"] if "token_accuracy" in m else []
    return f"held-out at step {evaluation.step}: " + ", ".join(parts)


def _side_by_side(text: Text, header, widths, rows, forced: bool, sep: str, style: Style) -> None:
    gap = "  "
    text.append(gap.join(f"{h:<{w}}" for h, w in zip(header, widths)).rstrip() + "\n",
                style="bold")
    for r in rows:
        text.append(f"{r.number:>{widths[0]}}{gap}")
        if not forced:
            text.append(f"{r.source:<{widths[1]}}{gap}")
        target, model = widths[-3], widths[-2]
        text.append(f"{sep.join(r.target):<{target}}{gap}")
        text.append_text(marked_output(r, style, sep))
        text.append(" " * (model - len(sep.join(r.output))) + gap)
        text.append(r.verdict + "\n", style=verdict_style(r, style))


def _stacked(text: Text, rows, forced: bool, word_level: bool, style: Style, width: int) -> None:
    """Per example: number and verdict, then the target over the model's tokens in aligned
    columns (input first, when there is one), wrapped in step to `width`."""
    lead = max(len(f"{r.number} {r.verdict}") for r in rows) + 2
    room = max(8, width - lead)
    names = ("input / " if not forced else "") + "target / " + \
        ("next-token guesses" if forced else "model")
    text.append(f"{'#':<{lead}}{names}\n", style="bold")
    for r in rows:
        head = f"{r.number} {r.verdict}"
        prefix = Text(f"{head:<{lead}}")
        prefix.stylize(verdict_style(r, style), len(str(r.number)) + 1, len(head))
        if not forced:
            for k, piece in enumerate(wrapped(r.source, room)):
                text.append_text(prefix if k == 0 else Text(" " * lead))
                text.append(piece + "\n")
            prefix = Text(" " * lead)
        for chunk in _aligned_chunks(r, word_level, room, style):
            text.append_text(prefix)
            prefix = Text(" " * lead)
            for target, _, _, w in chunk:
                text.append(target.ljust(w))
            text.append("\n")
            text.append_text(prefix)
            for _, output, right, w in chunk:
                text.append(guess_shown(output, right, style),
                            style=token_style(right, style) if output else "")
                text.append(" " * (w - len(output)))
            text.append("\n")


def _aligned_chunks(row, word_level: bool, room: int,
                    style: Style) -> list[list[tuple[str, str, bool, int]]]:
    """(target token, model token, right, column width) per place, in lines of `room` columns.
    A place's width holds the longer of its two tokens (and a space between words); a token
    wider than a whole line is the only thing cut (with an ellipsis)."""
    places = max(len(row.target), len(row.output))
    chunks, line, used = [], [], 0
    for k in range(places):
        target = row.target[k] if k < len(row.target) else ""
        output = row.output[k] if k < len(row.output) else ""
        right = k < len(row.right) and row.right[k]
        w = max(len(target), len(output)) + (1 if word_level else 0)
        if w > room:
            target, output = fit_label(target, room - 1, style), fit_label(output, room - 1, style)
            w = room
        if used + w > room and line:
            chunks.append(line)
            line, used = [], 0
        line.append((target, output, right, w))
        used += w
    if line:
        chunks.append(line)
    return chunks


def _room(widget) -> int:
    """Columns the panel holding `widget` offers (its scrollbar column left free)."""
    parent = widget.parent
    width = parent.content_size.width if parent is not None else 0
    # a panel switched in is laid out after this draw: the screen's width minus the panel's
    # borders, padding and scrollbar (7 columns) until then, never a fixed 76
    return max(20, width - 3) if width else max(20, widget.app.size.width - 7)


class PredictionsTable(Static):
    def show(self, controller, style: Style) -> None:
        width = _room(self)
        word = controller.scenario.tokenizer.kind == "word"
        self.update(predictions_text(controller.evaluation, word, style, width))


MIN_CELL, MAX_CELL = 6, 16  # generation table column widths, separating space included


def wrapped(line: str, width: int) -> list[str]:
    """`line` in pieces of at most `width` characters, broken after spaces where it can and
    inside a word only when the word is longer than a line; the pieces joined give `line`."""
    return textwrap.wrap(line, max(1, width), expand_tabs=False, replace_whitespace=False,
                         drop_whitespace=False, break_on_hyphens=False) or [""]


def probability(p: float) -> str:
    """0.31, or 4e-3 below 0.01: a token the sampler could pick never reads as 0.00."""
    if p >= 0.01 or p <= 0:
        return f"{p:.2f}"
    return f"{p:.0e}".replace("e-0", "e-")


def generation_text(generated, settings: str, style: Style, width: int = 76,
                    n_alternatives: int = 3) -> Text:
    """The prompt and the whole output (wrapped, never cut), then one column per generated
    token: the token, its probability, and the likeliest alternatives the sampler could have
    picked instead, with theirs (rows no token has are left out: top-k 1 leaves none)."""
    text = Text(no_wrap=True, overflow="crop")
    text.append("\n".join(wrapped(settings, width)) + "\n", style="dim")
    if generated is None:
        text.append("\n".join(wrapped("g types a prompt; the model continues it (or, for an "
                                      "encoder-decoder, writes its output)", width)), style="dim")
        return text
    quote = ascii if style.ascii else repr  # a quoted string, escapes included
    prompt = f"{quote(generated.prompt)} -> "
    for k, piece in enumerate(wrapped(prompt + quote(generated.text), width)):
        if k == 0:  # the prompt in bold, however the line was broken
            head = piece[:len(prompt)]
            text.append(head, style="bold")
            piece = piece[len(head):]
        text.append(piece + "\n")
    if not generated.probs:
        return text
    columns = []  # per generated token: [token, p, alt1 ..], unfitted
    for token, p, alts in zip(generated.tokens, generated.probs, generated.alternatives):
        others = [f"{t} {probability(q)}" for t, q in alts if t != token][:n_alternatives]
        columns.append([token.replace("\n", "~"), probability(p), *others])
    n_rows = max(len(column) for column in columns)
    # Columns as wide as the widest entry ("under 0.03" for words), within bounds: a long
    # token is cut with an ellipsis rather than pushing every other column off the panel.
    cell = min(MAX_CELL, max(MIN_CELL, 1 + max(len(e) for col in columns for e in col)))
    per_row = max(1, (width - 6) // cell)
    rows = ([["tok"], ["p"]] + [[f"alt{i + 1}"] for i in range(n_alternatives)])[:n_rows]
    for column in columns[:per_row]:
        for r in range(n_rows):
            rows[r].append(fit_label(column[r], cell - 1, style) if r < len(column) else "")
    for r, row in enumerate(rows):
        text.append(f"{row[0]:<5} ", style="bold")
        text.append("".join(f"{c:<{cell}}" for c in row[1:]).rstrip() + "\n",
                    style="bold" if r == 0 else "")
    if n_rows == 2:
        text.append("(no alternatives: the settings leave one token to pick)\n", style="dim")
    if len(generated.tokens) > per_row:
        text.append(f"(+{len(generated.tokens) - per_row} more tokens)", style="dim")
    return text


class GenerationPanel(Static):
    def show(self, generated, settings: str, style: Style) -> None:
        width = _room(self)
        self.update(generation_text(generated, settings, style, width))
