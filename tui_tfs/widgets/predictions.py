"""Held-out predictions beside their targets, refreshed at every evaluation, and the
generation panel: each generated token with its probability and the alternatives."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import Style, fit_label
from ..wrap import wrap

MARK = {False: ("✓", "✗"), True: ("ok", "X ")}


def _join(tokens: list[str], word_level: bool) -> str:
    return (" " if word_level else "").join(t.replace("\n", "~") for t in tokens)


def predictions_text(evaluation, word_level: bool, style: Style, width: int = 76) -> Text:
    """A table: input, prediction (wrong tokens marked), target, right or wrong."""
    text = Text(no_wrap=True, overflow="crop")
    if evaluation is None:
        text.append("held-out predictions appear at the first evaluation", style="dim")
        return text
    preds = evaluation.predictions
    forced = bool(preds) and preds[0].teacher_forced
    col = max(8, (width - 6) // 3)
    text.append(f"held-out examples at step {evaluation.step}"
                + (" (next-token guesses given the true text)" if forced else "") + "\n",
                style="dim")
    text.append(f"{'input':<{col}} {'prediction':<{col}} {'target':<{col}} ok\n", style="bold")
    good, bad = MARK[style.ascii]
    for p in preds:
        text.append(f"{fit_label(p.source.replace(chr(10), '~'), col, style):<{col}} ")
        shown = 0
        sep = " " if word_level else ""
        for k, token in enumerate(p.output_tokens):
            piece = token.replace("\n", "~") + (sep if k < len(p.output_tokens) - 1 else "")
            if shown + len(piece) > col:
                break
            right = k < len(p.target_tokens) and p.target_tokens[k] == token
            wrong_style = ("bold red" if style.color else "underline") if not right else ""
            text.append(piece, style=wrong_style)
            shown += len(piece)
        text.append(" " * (col - shown + 1))
        text.append(f"{fit_label(_join(p.target_tokens, word_level), col, style):<{col}} ")
        text.append(good if p.correct else bad,
                    style=("green" if p.correct else "bold red") if style.color else "bold")
        text.append("\n")
    return text


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


def generation_text(generated, settings: str, style: Style, width: int = 76,
                    n_alternatives: int = 3) -> Text:
    """The prompt and the output, then one column per generated token: the token, its
    probability, and the likeliest alternatives with theirs."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(wrap(Text(settings, style="dim"), width, indent=2))
    text.append("\n")
    if generated is None:
        text.append(wrap(Text("g types a prompt; the model continues it (or, for an "
                              "encoder-decoder, writes its output)", style="dim"), width, 2))
        return text
    said = Text(f"{generated.prompt!r} -> ", style="bold")
    said.append(f"{generated.text!r}")
    text.append(wrap(said, width, indent=2))
    text.append("\n")
    if not generated.probs:
        return text
    columns = []  # per generated token: [token, p, alt1 ..], unfitted
    for token, p, alts in zip(generated.tokens, generated.probs, generated.alternatives):
        others = [f"{t} {q:.2f}" for t, q in alts if t != token][:n_alternatives]
        others += [""] * (n_alternatives - len(others))
        columns.append([token.replace("\n", "~"), f"{p:.2f}", *others])
    # Columns as wide as the widest entry ("under 0.03" for words), within bounds: a long
    # token is cut with an ellipsis rather than pushing every other column off the panel.
    cell = min(MAX_CELL, max(MIN_CELL, 1 + max(len(e) for col in columns for e in col)))
    per_row = max(1, (width - 6) // cell)
    rows = [["tok"], ["p"]] + [[f"alt{i + 1}"] for i in range(n_alternatives)]
    for column in columns[:per_row]:
        for r, entry in enumerate(column):
            rows[r].append(fit_label(entry, cell - 1, style))
    for r, row in enumerate(rows):
        text.append(f"{row[0]:<5} ", style="bold")
        text.append("".join(f"{c:<{cell}}" for c in row[1:]) + "\n",
                    style="bold" if r == 0 else "")
    if len(generated.tokens) > per_row:
        text.append(f"(+{len(generated.tokens) - per_row} more tokens)", style="dim")
    return text


class GenerationPanel(Static):
    def show(self, generated, settings: str, style: Style) -> None:
        width = _room(self)
        self.update(generation_text(generated, settings, style, width))
