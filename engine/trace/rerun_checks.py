"""Checks that re-run the model on a trace's batch: the future-leak perturbation test and
sampled gradient checks. The checks that only read a trace are in engine.trace.checks.

Shapes: B batch, T target length, V vocabulary.
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from .findings import ERROR, INFO, Finding, passed as _passed
from .gradcheck import gradient_check
from ..maths.batch import run_model
from ..maths.param import Module, eval_mode
from ..maths.recorder import BACKWARD
from .trace import Trace


def _run_logits(model: Module, trace: Trace, tgt_in: np.ndarray) -> np.ndarray:
    """Logits (B,T,V) of the trace's batch with the decoder reading `tgt_in` instead."""
    return run_model(model, replace(trace.batch, tgt_in=tgt_in))


def check_no_future_leak(model: Module | None, trace: Trace) -> list[Finding]:
    """Perturbation test: change the target token at position t and re-run the model (eval
    mode); the logits at positions before t must not move. If they do, some earlier
    position reads a later token: the causal mask is missing or wrong."""
    if model is None:
        return [Finding("future_leak", True, INFO, "skipped: needs the model to re-run it")]
    tgt_in = np.asarray(trace.batch.tgt_in)
    t_len = tgt_in.shape[1]
    if t_len < 2:
        return _passed("future_leak", "skipped: a one-token target has no future to leak")
    vocab, pad = trace.config.vocab_size, trace.config.pad_id
    with eval_mode(model):
        base = _run_logits(model, trace, tgt_in)  # (B,T,V)
        tol = 64 * float(np.finfo(base.dtype).eps) * max(float(np.abs(base).max()), 1.0)
        worst = None  # (change, perturbed position t, earliest earlier position that moved)
        for t in range(1, t_len):
            changed = tgt_in.copy()
            new = (changed[:, t] + 1) % vocab
            if pad is not None:
                new = np.where(new == pad, (new + 1) % vocab, new)
            changed[:, t] = new
            logits = _run_logits(model, trace, changed)
            moved = np.abs(logits[:, :t] - base[:, :t]).max(axis=(0, 2))  # (t,) per position
            if moved.max() > tol and (worst is None or moved.max() > worst[0]):
                worst = (float(moved.max()), t, int(np.argmax(moved > tol)))
    if worst is None:
        return _passed("future_leak", f"changing any later target token leaves earlier logits "
                                      f"unchanged ({t_len - 1} perturbations)")
    change, t, position = worst
    return [Finding(
        "future_leak", False, ERROR,
        f"changing the decoder input token at position {t + 1} changes the logits at position "
        f"{position + 1} (by up to {change:.3g}): earlier positions see later tokens. In training "
        f"the whole target is fed at once, so the model can read the answer; at generation "
        f"time the future does not exist yet, and what it learned falls apart. Check the "
        f"decoder self-attention: its causal mask, and the axis its softmax runs over.",
        None, "decoder" if trace.batch.src is not None else None)]


def check_gradients(model: Module | None, loss_fn: Module | None, trace: Trace,
                    params: list[str] | None = None, n_samples: int = 2) -> list[Finding]:
    """Gradient-check a few sampled elements of a few parameters (by default one of each kind,
    the one farthest from the loss: "encoder.blocks.0.self_attn.q_proj.w", ...)."""
    if model is None or loss_fn is None:
        return [Finding("gradients", True, INFO, "skipped: needs the model and the loss to "
                                                 "re-run them")]
    if any(e.op == "dropout" and e.attrs.get("active") for e in trace.events):
        return [Finding("gradients", True, INFO, "skipped: the trace ran with dropout, so its "
                        "gradients cannot be compared with a deterministic re-run; record with "
                        "model.eval()")]
    names = params if params is not None else _representative_params(trace)
    findings = []
    for name in names:
        result = gradient_check(model, loss_fn, trace, name, n_samples=n_samples)
        event = next((e for e in trace.events if e.phase == BACKWARD
                      and name in e.facts.params.values()), None)
        if result.ok:
            continue
        index = None if event is None else event.index
        findings.append(Finding(
            "gradients", False, ERROR,
            f"{name}: the backward pass and float64 finite differences disagree (max relative "
            f"error {result.max_rel_error:.2e} > {result.tolerance:g}; {result.note}). A "
            f"gradient that is not the derivative of the loss moves the weights the wrong way.",
            index, name))
    return findings or _passed("gradients", f"{len(names)} parameters match finite differences")


def _representative_params(trace: Trace) -> list[str]:
    """One parameter of each kind ("self_attn.q_proj.w", "ln.gamma", "tok_emb.weight", ...):
    the one farthest from the loss, whose gradient has passed through the most backward code."""
    picked: dict[str, str] = {}
    for event in trace.events:
        if event.phase == BACKWARD:
            for name in event.facts.params.values():
                kind = re.sub(r"^(encoder\.|decoder\.)?(blocks\.\d+\.)?", "", name)
                picked[re.sub(r"^ln\d+\.", "ln.", kind)] = name
    return list(picked.values())
