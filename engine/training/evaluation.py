"""The one evaluation loop: a model's loss and next-token accuracy over held-out batches.

    for each batch:  logits = run_model(model, batch)           (B, T, V), in eval mode
                     loss_b = loss_fn(logits, batch.tgt_out)     mean over its n_b counted tokens
    loss     = sum_b loss_b * n_b / sum_b n_b                    every counted token weighs the same
    accuracy = argmax hits / sum_b n_b

The trainer's periodic evaluation and the scenarios' held-out metrics both run it; the model
comes back in the mode it was in.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..maths.batch import Batch, run_model
from ..maths.loss import CrossEntropyLoss, token_hits
from ..maths.param import eval_mode


def evaluate(model, batches: Iterable[Batch], loss_fn: CrossEntropyLoss) -> tuple[float, float]:
    """(mean loss per counted token, next-token accuracy) over `batches`, without dropout.
    No counted token at all gives (nan, 0.0): nothing was measured."""
    loss_sum, correct, counted = 0.0, 0, 0
    with eval_mode(model):
        for batch in batches:
            logits = run_model(model, batch)  # (B, T, V)
            loss = loss_fn.forward(logits, batch.tgt_out)
            hits, n = token_hits(logits, batch.tgt_out, loss_fn.ignore_id)
            loss_sum, correct, counted = loss_sum + loss * n, correct + hits, counted + n
    if not counted:
        return float("nan"), 0.0
    return loss_sum / counted, correct / counted
