"""The explorer's keys, in the groups help shows them in."""
from __future__ import annotations

from textual.binding import Binding

STEP_BINDINGS = [
    Binding("n", "step('next')", "Next", show=True, tooltip="Next event"),
    Binding("p", "step('prev')", "Prev", show=True, tooltip="Previous event"),
    Binding("i", "step('into')", "Into", show=True, tooltip="Step into the layer (one level down)"),
    Binding("o", "step('over')", "Over", show=True,
            tooltip="Step over the current layer (the status line's level)"),
    Binding("u", "step('out')", "Out", show=True,
            tooltip="Step out of the layer enclosing the level"),
    Binding("O", "step('back_over')", "Back over (previous layer)", show=False),
    Binding("e", "step('end_of_forward')", "EndFwd", show=True, tooltip="Run to the end of the forward pass"),
    Binding("b", "step('first_backward')", "Bwd", show=True, tooltip="Run to the first backward event"),
    Binding("U", "step('first_update')", "Run to the optimizer's update (a trained step's trace)",
            show=False),
    Binding("x", "find_nonfinite", "Run to next NaN/Inf", show=False),
    Binding("g", "find_grad_norm", "Run to next gradient norm above a bound", show=False),
    Binding("l", "goto_layer", "Run to a chosen layer", show=False),
]
TRACE_BINDINGS = [
    Binding("r", "new_batch", "Restart on a new random batch", show=False),
    Binding("N", "next_example", "Restart on the next example", show=False),
    Binding("I", "own_input", "Trace an input of your own", show=False),
    Binding("c", "run_checks", "Run the built-in checks", show=False),
    Binding("k", "gradient_check", "Gradient check of this parameter", show=False),
    Binding("B", "break_switch", "Toggle a break-it switch and re-run", show=False),
    Binding("C", "show_code", "Code: the engine lines that computed this event", show=False),
]
VIEW_BINDINGS = [
    Binding("t", "view('tensor')", "Tensor view", show=False),
    Binding("a", "view('attention')", "Attn", show=True, tooltip="Attention map"),
    Binding("A", "view('overview')", "Attention overview: all layers x heads", show=False),
    Binding("d", "view('grads')", "Gradient norms per layer", show=False),
    Binding("P", "view('positional')", "Positional encoding", show=False),
    Binding("E", "view('embedding')", "Token embeddings", show=False),
    Binding("T", "view('temperature')", "Softmax temperature on one row", show=False),
    Binding("K", "view('scaling')",
            "Scaling by 1/sqrt(d_k): entropy and top weight per row with and without it, "
            "spread of scores as d_k grows", show=False),
    Binding("f", "toggle_formula", "Show/hide the formula panel", show=False),
    Binding("F", "expand_formula", "Formula panel: the whole explanation <-> the view",
            show=False),
    Binding("L", "toggle_tree", "Layer tree: show/hide (small terminal: tree <-> view)",
            show=False),
    Binding("right_square_bracket", "tensor(1)", "Next tensor of this event", show=False),
    Binding("left_square_bracket", "tensor(-1)", "Previous tensor of this event", show=False),
    Binding("G", "toggle_gradient", "Switch tensor <-> its gradient", show=False),
    Binding("v", "toggle_numbers", "Numbers <-> shades", show=False),
    Binding("z", "toggle_shared_scale",
            "Shade scale: each map its own <-> one shared across heads/layers", show=False),
    Binding("m", "cycle('item', 1)", "Next batch item", show=False),
    Binding("M", "cycle('item', -1)", "Previous batch item", show=False),
    Binding("h", "cycle('head', 1)", "Next head", show=False),
    Binding("H", "cycle('head', -1)", "Previous head", show=False),
    Binding("s", "cycle('stage', 1)", "Next attention stage (scores/scaled/masked/softmax)", show=False),
    Binding("S", "cycle('stage', -1)", "Previous attention stage", show=False),
    Binding("y", "attention_layer(1)", "Next attention layer", show=False),
    Binding("Y", "attention_layer(-1)", "Previous attention layer", show=False),
    Binding("j", "cycle('query', 1)", "Temperature view: choose the next query row", show=False),
    Binding("J", "cycle('query', -1)", "Temperature view: choose the previous query row",
            show=False),
    Binding("plus", "temperature(2.0)", "Raise softmax temperature x2", show=False),
    Binding("minus", "temperature(0.5)", "Lower softmax temperature /2", show=False),
]
SCREEN_BINDINGS = [
    Binding("question_mark", "app.help", "Help", show=True, tooltip="Help: every key"),
    Binding("ctrl+t", "app.train", "Train", show=True,
            tooltip="Train this scenario's model (live loss plot, predictions, generation)"),
    Binding("escape", "back", "Back: close the overview, else the scenarios", show=False),
    Binding("q", "app.quit", "Quit", show=False),
]
