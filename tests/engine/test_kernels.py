"""Each layer reads as its formula; the fast kernels (engine/fast/kernels.py) compute the same
bits and are chosen in one place (engine/maths/layers/kernel_choice.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from engine.fast import parallel
from engine.maths.layers import kernel_choice
from engine.maths.layers.kernel_choice import formulas, use_kernels
from engine.maths.loss import CrossEntropyLoss
from engine.maths.recorder import recording
from engine_threads import engine_threads  # noqa: F401  (a fixture)

LAYERS = Path(kernel_choice.__file__).parent


def _step(kind: str, dropout: float, dtype: str) -> list[np.ndarray]:
    """Logits, loss and every gradient of one training step on a padded batch."""
    common = dict(vocab_size=13, d_model=16, n_heads=4, d_ff=24, n_layers=2, max_len=9,
                  dropout=dropout, pad_id=0, dtype=dtype, seed=3)
    ids = np.random.default_rng(4).integers(1, 13, size=(5, 8))
    ids[0, :3] = 0  # left padding: queries that see no key
    ids[1, -2:] = 0
    if kind == "decoder":
        model = build_model(DecoderOnlyConfig(**common, norm="pre", activation="gelu"))
        logits = model.forward(ids)
    else:
        model = build_model(EncoderDecoderConfig(**common, norm="post", activation="relu"))
        logits = model.forward(ids, ids[:, ::-1].copy())
    loss_fn = CrossEntropyLoss(0, label_smoothing=0.1)
    loss = loss_fn.forward(logits, ids)
    model.backward(loss_fn.backward())
    return [logits, np.asarray(loss)] + [p.grad.copy() for p in model.params()]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("kind", ["decoder", "encoder_decoder"])
def test_the_formulas_and_the_kernels_give_the_same_bits(kind, dropout, dtype, engine_threads):
    """Outside a recording, `formulas()` runs every layer's formula, op by op in fresh
    arrays; without it the kernels run (in row blocks when split): the same numbers."""
    fast = _step(kind, dropout, dtype)
    with formulas():
        assert not use_kernels()
        formula = _step(kind, dropout, dtype)
    assert use_kernels()
    unequal = [i for i, (a, b) in enumerate(zip(fast, formula)) if not np.array_equal(a, b)]
    assert not unequal, f"{len(unequal)} of {len(fast)} results differ (0 logits, 1 loss, grads)"


def test_recording_runs_the_formulas_and_nothing_else_decides():
    with recording():
        assert not use_kernels()
    assert use_kernels()


def _calls_and_imports(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names}
    return calls, imports


@pytest.mark.parametrize("path", sorted(p for p in LAYERS.glob("*.py")
                                         if p.name not in ("__init__.py", "kernel_choice.py")),
                         ids=lambda p: p.name)
def test_no_layer_asks_the_recorder_or_the_thread_pool_itself(path):
    """The kernel choice lives in kernel_choice.py; the fast code in engine/fast/kernels.py."""
    calls, imports = _calls_and_imports(path)
    assert "active" not in calls and "active" not in imports, f"{path.name} asks the recorder"
    assert "parallel" not in imports, f"{path.name} runs row blocks itself"


def test_the_kernels_run_on_two_threads_when_nobody_records(monkeypatch):
    """The kernels really are the code that runs untraced: a split pass hands blocks out."""
    blocks = []
    real = parallel.for_each_part
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    monkeypatch.setattr(parallel, "for_each_part",
                        lambda work, fn, max_parts=None: (blocks.append(work),
                                                          real(work, fn, max_parts)))
    parallel.set_threads(2)
    try:
        _step("decoder", 0.0, "float32")
        split = len(blocks)
        blocks.clear()
        with formulas():
            _step("decoder", 0.0, "float32")
    finally:
        parallel.set_threads(1)
    assert split > 0 and not blocks, (split, len(blocks))


def test_the_readme_shows_the_attention_layer_as_it_reads():
    """Every line of the README's excerpt (but the `...` gaps) is a line of attention.py, in
    that order: the excerpt cannot drift from the code."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("`MultiHeadAttention.forward`:")
    block = readme[readme.index("```python\n", start) + 10:readme.index("```\n", start + 40)]
    excerpt = [line for line in block.splitlines() if line.strip() not in ("", "...")]
    source = (LAYERS / "attention.py").read_text().splitlines()
    at = 0
    for line in excerpt:
        assert line in source[at:], f"README line not in attention.py (in order): {line!r}"
        at = source.index(line, at) + 1
    assert len(excerpt) >= 10
