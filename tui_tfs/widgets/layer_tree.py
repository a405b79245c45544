"""The layer tree: the model's layers as the trace ran them, forward then backward.

Two branches, "forward" and "backward" (and a third, "update", for a traced training step: the
optimizer's step, one leaf per parameter), each holding the layers in the order they ran
(encoder > blocks.0 > self_attn > softmax). Leaves are events. The current event is marked
with a glyph and the tree cursor; only the branch that holds it is expanded, so the tree stays
readable in 24 rows. Choosing a node (Enter) posts `EventPicked` with its event (a layer's
first event).
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from engine.maths.recorder import BACKWARD, FORWARD, UPDATE
from engine.trace.trace import path_parts

from ..messages import EventPicked
from ..render import fit_label
from ..style import Style

ASCII_LINES = ("  ", "| ", "`-", "|-")
GUIDE = 2  # columns of guide lines a level (guide_depth)


class LayerTree(Tree[int]):
    """Collapsible layers; node data is the event index of a leaf (or of a layer's first event)."""

    SCOPED_CSS = False  # some rules start at the App's classes (-compact, -large, -ascii)
    DEFAULT_CSS = """
    LayerTree {
        width: 28;
        height: 1fr;
        border: round $accent;
        border-title-align: left;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    /* below 80x23 the tree and the view take turns (L) and take the whole width */
    App.-compact LayerTree { width: 1fr; }
    /* a projector's terminal: a wider tree (the maps' cells grow in the views) */
    App.-large LayerTree { width: 40; }
    App.-ascii LayerTree { border: ascii $accent; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("model", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self._leaves: dict[int, TreeNode[int]] = {}
        self._levels: dict[int, int] = {}  # event index -> its leaf's level (guides before it)
        self._open: list[TreeNode[int]] = []
        self._current: int | None = None
        self._trace = None
        self._style = Style()

    def use_style(self, style: Style) -> None:
        """ASCII guides and expand icons in ASCII mode."""
        self._style = style
        if style.ascii:
            self.ICON_NODE, self.ICON_NODE_EXPANDED = "+ ", "- "
            self.LINES = {"default": ASCII_LINES, "bold": ASCII_LINES, "double": ASCII_LINES}

    def label_room(self, index: int) -> int | None:
        """Columns left for event `index`'s label after its level's guides (2 a level) and the
        scrollbar's column (kept free, so the scrollbar coming or going changes no label);
        None before the tree has a width."""
        width = self.size.width - self.styles.scrollbar_size_vertical
        return width - GUIDE * self._levels.get(index, 0) if width > 0 else None

    def _leaf_label(self, event, current: bool) -> Text:
        """'▶name op'; the op is left out, not cut, where the tree's width has no room for it,
        and a name too long for the room ends in an ellipsis."""
        name = path_parts(event.path)[-1]
        mark = (">" if self._style.ascii else "▶") if current else " "
        room = self.label_room(event.index)
        if room is not None and len(mark) + len(name) > room:
            name = fit_label(name, max(room - len(mark), 1), self._style)
        text = Text(f"{mark}{name}", style="reverse bold" if current else "")
        if event.op != name and (room is None or text.cell_len + 1 + len(event.op) <= room):
            text.append(f" {event.op}", style="dim")
        return text

    def on_resize(self) -> None:
        """Labels again at the new width (the op comes back when there is room for it)."""
        if self._trace is None:
            return
        for index, leaf in self._leaves.items():
            leaf.set_label(self._leaf_label(self._trace.events[index], index == self._current))

    def load(self, trace) -> None:
        """Rebuild for a new trace."""
        self._trace = trace
        self.clear()
        self._leaves.clear()
        self._levels.clear()
        self._open = []
        self._current = None
        phases = {FORWARD: "forward", BACKWARD: "backward", UPDATE: "update"}
        glyph = {FORWARD: ">>" if self._style.ascii else "▶▶",
                 BACKWARD: "<<" if self._style.ascii else "◀◀",
                 UPDATE: "=>" if self._style.ascii else "⇒"}
        for phase, title in phases.items():
            events = [e for e in trace.events if e.phase == phase]
            if not events:
                continue
            top = self.root.add(Text(f"{glyph[phase]} {title} ({len(events)})", style="bold"),
                                data=events[0].index)
            stack: list[tuple[str, TreeNode[int]]] = []  # (path prefix, node) of open layers
            for event in events:
                parts = path_parts(event.path)
                prefixes = [".".join(parts[: i + 1]) for i in range(len(parts) - 1)]
                depth = 0
                while depth < len(stack) and depth < len(prefixes) and stack[depth][0] == prefixes[depth]:
                    depth += 1
                del stack[depth:]
                parent = stack[-1][1] if stack else top
                for prefix in prefixes[depth:]:
                    node = parent.add(prefix.rsplit(".", 1)[-1] if not prefix.split(".")[-1].isdigit()
                                      else ".".join(prefix.split(".")[-2:]), data=event.index)
                    stack.append((prefix, node))
                    parent = node
                self._levels[event.index] = len(prefixes) + 1  # the phase's branch is level 0
                self._leaves[event.index] = parent.add_leaf(self._leaf_label(event, False),
                                                            data=event.index)

    def on_unmount(self) -> None:
        """Removed with its screen: let go of the trace. A screen and its widgets refer to each
        other, so what they hold waits for Python's cycle collector, which counts objects, not
        bytes: a closed inspector's trace (90 MB on char-lm) could stay for a long time."""
        self._trace = None

    def show_event(self, index: int) -> None:
        """Mark event `index`, open the layers that hold it and close the ones that do not."""
        if self._trace is None or index not in self._leaves:
            return
        if self._current is not None and self._current in self._leaves:
            self._leaves[self._current].set_label(
                self._leaf_label(self._trace.events[self._current], False))
        leaf = self._leaves[index]
        leaf.set_label(self._leaf_label(self._trace.events[index], True))
        self._current = index
        ancestors = []
        node = leaf.parent
        while node is not None and node is not self.root:
            ancestors.append(node)
            node = node.parent
        keep = {id(n) for n in ancestors}
        for node in self._open:
            if id(node) not in keep and node.is_expanded:
                node.collapse()
        for node in reversed(ancestors):
            if not node.is_expanded:
                node.expand()
        self._open = ancestors
        self._tree_lines  # noqa: B018 - lay out the lines now so the leaf has its line number
        self.move_cursor(leaf)

    def on_tree_node_selected(self, event: Tree.NodeSelected[int]) -> None:
        event.stop()
        if event.node.data is not None:  # a leaf: its event; a layer: its first event
            self.post_message(EventPicked(event.node.data))
