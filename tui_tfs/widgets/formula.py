"""The formula panel: what the current operation computes, its shapes with numbers, and why."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import Style


class FormulaPanel(Static):
    """Title, formula (Unicode or ASCII), this event's shapes, and the explanation."""

    def show(self, session, style: Style) -> None:
        ex = session.explanation()
        text = Text()
        text.append(ex.title, style="bold")
        text.append(f"  [{ex.key}]\n", style="dim")
        text.append((ex.formula_ascii if style.ascii else ex.formula_unicode) + "\n",
                    style="bold cyan" if style.color else "bold")
        text.append(ex.shapes.rstrip() + "\n")
        text.append(ex.text.strip(), style="italic" if style.color else "")
        self.update(text)
        self.border_title = "formula"
