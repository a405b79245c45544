"""The training numbers beside the plot, and the per-layer gradient norms over time.

Both render from a `TrainingController` (attributes down: the screen calls `show`); the text
functions are pure so tests can read them without a terminal.
"""
from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.widgets import Static

from ..render import fit_label
from ..style import Style
from ..wrap import wrap

SPARK_UNICODE = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-:=+*#"
STATE_WORDS = {"ready": "ready", "running": "RUNNING", "paused": "PAUSED", "stopped": "STOPPED",
               "finished": "FINISHED", "diverged": "DIVERGED"}


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    return format(value, spec) if math.isfinite(value) else str(value)


def held_out_line(controller) -> tuple[str, str]:
    """(label, value) of the held-out metric: exact match for tasks with answers, else
    perplexity; '-' before the first evaluation."""
    ev = controller.evaluation
    if ev is None:
        return "held-out", "-"
    m = ev.metrics
    if "exact_match" in m:
        return "exact", f"{m['exact_match']:.0%} @{ev.step}"
    return "perplexity", f"{m['perplexity']:.3g} @{ev.step}"


def metrics_text(controller, style: Style) -> Text:
    c = controller
    s = c.latest
    text = Text(no_wrap=True, overflow="ellipsis")
    bold_state = ("bold red" if c.state == "diverged" else "bold green" if c.running else "bold") \
        if style.color else "bold"
    text.append(f"{STATE_WORDS.get(c.state, c.state)}", style=bold_state)
    speed = "max speed" if c.steps_per_second is None else c.speed_label  # [ and ] set it
    text.append(f"  {speed}\n")  # on the state's line: the box has no row to spare
    rows = [("step", f"{c.step} / {c.total_steps}"),
            ("loss", _fmt(s.loss if s else None, ".4f")),
            ("lr", _fmt(s.lr if s else c.config.lr, ".2e")),
            ("grad norm", _fmt(s.grad_norm if s else None, ".3g")),
            ("tokens/s", f"{s.tokens_per_s:,.0f}" if s else "-"),
            held_out_line(c)]
    ev = c.evaluation
    rows.append(("held loss", _fmt(ev.metrics["loss"] if ev else None, ".4f")))
    breaks = c.model.config.breaks.active()
    rows.append(("broken", ",".join(breaks) if breaks else "none"))
    label_width = max(len(label) for label, _ in rows) + 1  # "perplexity" needs its space too
    for label, value in rows:
        text.append(f"{label:<{label_width}}", style="bold")
        text.append(f"{value}\n")
    return text


def sparkline(values: np.ndarray, width: int, lo: float, hi: float, style: Style) -> str:
    """`values` (log10 already) bucketed to `width` glyphs on a shared [lo, hi] scale."""
    ramp = SPARK_ASCII if style.ascii else SPARK_UNICODE
    if len(values) == 0:
        return ""
    if len(values) > width:
        edges = np.linspace(0, len(values), width + 1).astype(int)
        values = np.maximum.reduceat(values, edges[:-1])  # the peaks matter for gradients
    span = hi - lo if hi > lo else 1.0
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append("!")
        else:
            out.append(ramp[int(round((v - lo) / span * (len(ramp) - 1)))])
    return "".join(out)


def grad_history_text(controller, style: Style, width: int = 76) -> Text:
    """One row per layer group: name, a sparkline of log10(norm) over the run, the last norm."""
    text = Text(no_wrap=True, overflow="crop")
    groups = controller.layer_norms
    if not groups:
        text.append("per-layer gradient norms appear here once training runs", style="dim")
        return text
    label_w, value_w = 18, 9
    spark_w = max(8, width - label_w - value_w - 2)
    logs = {g: np.log10(np.maximum(np.asarray(v, dtype=np.float64), 1e-12)) for g, v in groups.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()] or [np.zeros(1)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    text.append(wrap(Text(f"gradient norm per layer over steps 1..{controller.step}, log scale "
                          f"{10 ** lo:.0e}..{10 ** hi:.0e}, ! NaN", style="dim"), width, 2))
    text.append("\n")
    for group, values in logs.items():
        text.append(f"{fit_label(group, label_w, style, keep_end=True):<{label_w}} ", style="bold")
        text.append(sparkline(values, spark_w, lo, hi, style))
        text.append(f" {_fmt(groups[group][-1], '.2e'):>{value_w}}\n")
    return text


def _room(widget) -> int:
    """Columns the panel holding `widget` offers (its scrollbar column left free)."""
    parent = widget.parent
    width = parent.content_size.width if parent is not None else 0
    # a panel switched in is laid out after this draw: the screen's width minus the panel's
    # borders, padding and scrollbar (7 columns) until then, never a fixed 76
    return max(20, width - 3) if width else max(20, widget.app.size.width - 7)


class MetricsPanel(Static):
    """Step, learning rate, gradient norm, tokens/s and the held-out metric."""

    SCOPED_CSS = False  # some rules start at the App's classes (-compact, -large, -ascii)
    DEFAULT_CSS = """
    MetricsPanel {
        width: 27;
        height: 12;
        border: round $accent;
        border-title-align: left;
        padding: 0 1;
    }
    /* below 80x23 one panel at a time (v flips): it takes the whole height and width */
    App.-compact MetricsPanel { width: 1fr; height: 1fr; }
    App.-large MetricsPanel { height: 1fr; }
    App.-ascii MetricsPanel { border: ascii $accent; }
    """

    def show(self, controller, style: Style) -> None:
        self.update(metrics_text(controller, style), layout=False)  # fixed size


class GradHistory(Static):
    """Per-layer gradient norms over time, at a glance."""

    def show(self, controller, style: Style) -> None:
        width = _room(self)
        self.update(grad_history_text(controller, style, width))
