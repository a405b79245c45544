"""The training screen's keys, in the groups help shows them in."""
from __future__ import annotations

from textual.binding import Binding

RUN_BINDINGS = [
    Binding("space", "toggle_run", "Start/Pause", show=True, tooltip="Start, pause or resume training"),
    Binding("n", "one_step", "1 step", show=True,
            tooltip="Train exactly one step and open its trace: forward, loss, backward, update"),
    # Not in the footer (80 columns hold the others and ?): help and the palette list it.
    Binding("s", "stop", "Stop", show=False, tooltip="Stop the run (held-out check; space trains on)"),
    Binding("i", "inspect", "Inspect", show=True,
            tooltip="Pause and open the explorer on the current batch with the live weights"),
    Binding("w", "save", "Save", show=True,
            tooltip="Save a checkpoint (like tui-tfs train; asks before replacing another run's "
                    "file); a picked snapshot: asks for a path"),
    Binding("left_square_bracket", "speed(-1)", "Slower: fewer steps a second (down to 1)",
            show=False),
    Binding("right_square_bracket", "speed(1)", "Faster: more steps a second (up to no cap)",
            show=False),
    Binding("plus", "scale_lr(2.0)", "LR x2", show=True, tooltip="Double the learning rate"),
    Binding("minus", "scale_lr(0.5)", "LR /2", show=True, tooltip="Halve the learning rate"),
    Binding("L", "set_lr", "Type a learning rate", show=False),
    Binding("B", "break_switch", "Toggle a break-it switch (between steps)", show=False),
]
TIMELINE_BINDINGS = [  # priority: a focused panel would scroll with them instead
    Binding("left", "timeline(-1)", "Timeline: an earlier snapshot", show=False, priority=True),
    Binding("right", "timeline(1)", "Timeline: a later snapshot (past the latest: now)",
            show=False, priority=True),
    Binding("home", "timeline_end('first')", "Timeline: the first snapshot", show=False,
            priority=True),
    Binding("end", "timeline_end('last')", "Timeline: the latest snapshot", show=False,
            priority=True),
    Binding("o", "open_snapshot", "Explore the model as it was at the picked snapshot",
            show=False),
    Binding("b", "branch", "Branch: train on from the picked snapshot (lr, seed, switch)",
            show=False),
    Binding("K", "keep", "Keep one of two runs (the other is discarded; asks first)",
            show=False),
]
VIEW_BINDINGS = [
    Binding("y", "toggle_log", "Loss plot: log or linear y axis", show=False),
    Binding("1", "view('tr-predictions')", "Held-out predictions", show=False),
    Binding("2", "view('tr-layers')", "Per-layer gradient norms over time", show=False),
    Binding("3", "view('tr-generate')", "Generation panel", show=False),
    Binding("a", "probe", "Attn", show=False,
            tooltip="The probe's attention at every snapshot, heatmaps over time, diffs"),
    Binding("v", "flip_panel", "Small terminal: loss plot -> numbers -> panel 1/2/3", show=False),
]
GENERATE_BINDINGS = [
    Binding("g", "generate", "Generate", show=True, tooltip="Generate from a prompt you type"),
    Binding("greater_than_sign", "temperature(1.25)", "Raise sampling temperature", show=False),
    Binding("less_than_sign", "temperature(0.8)", "Lower sampling temperature", show=False),
    Binding("k", "cycle_top_k", "Cycle top-k (off, 1, 3, 5, 10)", show=False),
    Binding("p", "cycle_top_p", "Cycle top-p (off, 0.5, 0.9, 0.95)", show=False),
]
SCREEN_BINDINGS = [
    Binding("question_mark", "app.help", "Help", show=True, tooltip="Help: every key"),
    Binding("escape", "leave", "Back to the explorer (pauses training); a pick: let go of it",
            show=False),
    Binding("q", "app.quit", "Quit", show=False),
]
