"""The logit lens view: what the model would predict if it stopped after each layer.

Rows are the layers (the embeddings, then each block; the last is the model's output), columns
the positions of one batch item. A cell is the most likely next token read from that layer's
residual stream and its probability, then the target's rank there ("#1": the target is the top
token). The columns that fit the panel are shown; < and > page through the positions; a model
with more layers than the panel is tall scrolls down (Tab to the view, then the arrows).

The lens is computed once per trace and batch item (engine.trace.logit_lens: the final
LayerNorm and the head on each layer's stream), not on every redraw; a model as large as GPT-2
gets it from a thread, the view saying so until it is ready.
"""
from __future__ import annotations

import weakref
from functools import partial

from rich.text import Text
from textual.worker import get_current_worker

from engine.trace.logit_lens import EMBEDDINGS, LensError, LogitLens, lens_cost, logit_lens

from ..render import PRINTABLE
from ..style import Style
from ..wrap import wrap
from .panel import TextPanel

GAP = 2  # spaces between columns
# multiply-adds of a lens computed while drawing (every built-in scenario's takes well under a
# millisecond); a larger one runs in a thread (GPT-2 small's: 13 x 32 x 768 x 50,257 = 16 G)
INLINE_COST = 50_000_000


def percent(p: float) -> str:
    """A probability as a percentage that never reads as certainty or impossibility when it is
    neither: 0.4213 -> "42%", 0.0421 -> "4.2%", 0.0004 -> "0.04%", 0.99996 -> ">99.9%"."""
    value = 100.0 * p
    if p >= 1.0:
        return "100%"
    if value > 99.9:
        return ">99.9%"
    if value >= 99.5:
        return f"{value:.1f}%"
    if value >= 10:
        return f"{value:.0f}%"
    if value >= 1:
        return f"{value:.1f}%"
    if value >= 0.01:
        return f"{value:.2f}%"
    return "<0.01%"


def row_name(row: str, n: int, last: bool) -> str:
    """"embed", then "L1", "L2", ... (the stream after block 1, 2, ...); the last one is the
    model's output: "L3 out"."""
    if row == EMBEDDINGS:
        return "embed"
    return f"L{n}" + (" out" if last else "")


def lens_columns(lens: LogitLens, label, ranks: bool) -> list[list[str]]:
    """Per position, its cells top to bottom: the position (from 1), the token read, the
    target, then one cell per layer ("label pp% #rank")."""
    columns = []
    for t in range(lens.positions):
        cells = [str(t + 1), label(lens.input_ids[t]),
                 label(lens.target_ids[t]) if ranks and lens.target_rank[0, t] else ""]
        for row in range(len(lens.rows)):
            cell = f"{label(lens.top_ids[row, t, 0])} {percent(lens.top_probs[row, t, 0])}"
            if ranks and lens.target_rank[row, t]:
                cell += f" #{lens.target_rank[row, t]}"
            cells.append(cell)
        columns.append(cells)
    return columns


def fitting(widths: list[int], start: int, room: int | None) -> int:
    """How many columns from `start` fit in `room` (at least one: a wider one scrolls)."""
    if room is None:
        return len(widths) - start
    used, count = 0, 0
    for width in widths[start:]:
        if count and used + GAP + width > room:
            break
        used += (GAP if count else 0) + width
        count += 1
    return max(count, 1)


def previous_start(widths: list[int], start: int, room: int | None) -> int:
    """Where the page before the one starting at `start` starts: as many columns as fit."""
    begin = start
    while begin > 0 and fitting(widths, begin - 1, room) >= start - begin + 1:
        begin -= 1
    return begin


class LogitLensView(TextPanel):
    """Layers x positions of the current batch item, a page of positions at a time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (trace, item, the lens or why there is none): the last one computed
        self._lens: tuple[weakref.ref, int, LogitLens | str] | None = None
        self._pending: tuple[weakref.ref, int] | None = None  # (trace, item) being computed
        self._page: tuple[list[int], int, int | None] = ([], 0, None)  # widths, start, room

    def lens(self, session) -> LogitLens | str | None:
        """The lens of the session's trace and item, computed once for them: here when it is
        cheap, else in a thread (None until it is ready; the view is drawn again then). A
        string says why there is no lens."""
        item = min(session.view.item, session.batch_size - 1)
        trace = session.trace
        cached = self._lens
        if cached is not None and cached[0]() is trace and cached[1] == item:
            return cached[2]
        try:
            cheap = lens_cost(session.model, trace) <= INLINE_COST
        except LensError as error:
            return str(error)
        if cheap:
            self._keep(weakref.ref(trace), item, self._compute_now(session.model, trace, item))
            return self._lens[2]
        pending = self._pending
        if pending is None or pending[0]() is not trace or pending[1] != item:
            self._pending = (weakref.ref(trace), item)
            self.run_worker(partial(self._compute_in_thread, session.model, trace, item),
                            thread=True, exclusive=True, group="logit-lens")
        return None

    @staticmethod
    def _compute_now(model, trace, item: int, cancelled=None) -> LogitLens | str | None:
        try:
            return logit_lens(model, trace, item, cancelled=cancelled)
        except LensError as error:
            return str(error)

    def _compute_in_thread(self, model, trace, item: int) -> None:
        worker = get_current_worker()
        lens = self._compute_now(model, trace, item, cancelled=lambda: worker.is_cancelled)
        if lens is not None and not worker.is_cancelled:
            self.app.call_from_thread(self._ready, weakref.ref(trace), item, lens)

    def _keep(self, trace: weakref.ref, item: int, lens: LogitLens | str) -> None:
        """A new trace is not kept alive by the lens of an old one (a weak reference)."""
        self._lens = (trace, item, lens)

    def _ready(self, trace: weakref.ref, item: int, lens: LogitLens | str) -> None:
        """A thread's lens arrived: keep it, and draw it if the view still shows that trace."""
        self._keep(trace, item, lens)
        self._pending = None
        if self._shown is not None and self.display and self.is_attached:
            self.show(*self._shown)

    def page_start(self, step: int) -> int:
        """The first position of the next (step > 0) or previous page, as last drawn."""
        widths, start, room = self._page
        if step > 0:
            following = start + fitting(widths, start, room)
            return following if following < len(widths) else start
        return previous_start(widths, start, room)

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        width = self.text_width
        lens = self.lens(session)
        if lens is None:
            c = session.model.config
            text.append(wrap(Text(f"computing the logit lens: {c.n_layers + 1} layers x "
                                  f"{session.trace.batch.tgt_in.shape[1]} positions x "
                                  f"{c.vocab_size:,} tokens ...", style="dim"), width))
            return text
        if isinstance(lens, str):
            text.append(wrap(Text(lens), width))
            return text
        tokenizer = session.scenario.tokenizer

        def label(token_id) -> str:
            return tokenizer.label(int(token_id), ascii_only=style.ascii).translate(
                PRINTABLE[style.ascii])

        ranks = lens.target_rank is not None
        blocks = len(lens.rows) - 1
        norm = "-> ln_f -> head" if lens.final_norm else "-> head (post-LN)"
        layers = f"L1-L{blocks}" if blocks > 1 else "L1"
        text.append(wrap(Text(f"each block's stream ({layers}) {norm}", style="bold"), width,
                         indent=2))
        text.append("\n")
        what = "cell: top next token, its p" + ("; #n: target's rank" if ranks else "")
        text.append(wrap(Text(what, style="dim"), width, indent=2))
        text.append("\n")
        columns = lens_columns(lens, label, ranks)
        names = ["pos", "reads", "target" if ranks else ""] + [
            row_name(r, n, n == len(lens.rows) - 1) for n, r in enumerate(lens.rows)]
        name_w = max(len(n) for n in names)
        widths = [max(len(c) for c in column) for column in columns]
        room = None if width is None else width - name_w - GAP
        start = min(session.view.lens_start, len(columns) - 1)
        count = fitting(widths, start, room)
        self._page = (widths, start, room)
        item = f"item {lens.item + 1}/{session.batch_size}, " if session.batch_size > 1 else ""
        where = f"positions {start + 1}-{start + count}" if count > 1 else \
            f"position {start + 1}"
        text.append(wrap(Text(f"{item}{where} of {len(columns)}"
                              + (" (< > page)" if count < len(columns) else ""), style="dim"),
                         width, indent=2))
        text.append("\n")
        shown = range(start, start + count)
        for r, name in enumerate(names):
            if r == 2 and not ranks:
                continue
            line = Text(name.ljust(name_w), style="bold" if r < 3 else "")
            for t in shown:
                cell = columns[t][r]
                line.append(" " * GAP)
                line.append(cell.ljust(widths[t]), style=self._cell_style(lens, r - 3, t, style))
            text.append(line)
            text.append("\n")
        return text

    @staticmethod
    def _cell_style(lens: LogitLens, row: int, t: int, style: Style) -> str:
        """Headers dim; a layer's cell bold where its top token is the target (#1)."""
        if row < 0:
            return "dim" if row == -3 else ""
        if lens.target_rank is not None and lens.target_rank[row, t] == 1:
            return "bold green" if style.color else "bold"
        return ""
