"""Data parallelism: one batch's forward and backward as shards of its rows, one per thread.

    rows      = row_blocks(B, shards)                 contiguous slices of the batch's sequences
    shard j   : logits_j = model_j.forward(rows j)     model_0 is the model; model_j a replica
                loss_j, n_j = cross_entropy(logits_j)  mean over the shard's n_j counted tokens
                model_j.backward(d loss_j * n_j / n)   n = sum n_j: each shard's share of the mean
    grad      = sum over j of model_j's gradient       in the order j = 0, 1, ...
    loss      = sum over j of loss_j * n_j / n

The summed gradient is the gradient of the whole batch's mean loss, the same maths as one
pass over all rows; only the order of the float additions differs (each weight gradient is
two partial products added, not one product), so it agrees with the one-pass gradient to
rounding, not bit for bit. The number of shards is part of the maths; the number of threads
is not: two shards on one thread run one after the other and give the same bits as on two.

A replica is a second model built from the same config whose parameters are views of the
model's values (nothing is copied, an optimizer step is seen by all) but which has its own
gradient buffer, saved activations and dropout generator. Why shards and not only splitting
each large operation (`engine.fast.parallel`): a shard hands work to another thread once per step
instead of once per operation (~100 per step), and everything in between, the small
operations and the Python that calls them, runs on both cores too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fast import parallel
from ..maths.layers import Dropout
from ..maths.loss import CrossEntropyLoss, token_hits
from ..maths.models import build_model
from ..maths.recorder import active

# A shard is worth a thread of its own from about this many token x parameter products per
# step (~1 multiply-add each, forward). Measured on 2 cores, the small bench model at 2 shards
# against 1 (both on 2 threads): batch 4 (1.0e8 per shard) took 1.30x as long, batch 8
# (2.1e8) 0.85x; below it the Python between operations, one thread at a time (the GIL),
# outweighs the arithmetic.
MIN_SHARD_WORK = 150_000_000


def shards_for(tokens: int, n_params: int, threads: int) -> int:
    """How many shards pay off for a step of `tokens` target positions on a model of `n_params`:
    one per thread while each shard keeps at least MIN_SHARD_WORK, else 1."""
    return max(1, min(threads, tokens * n_params // MIN_SHARD_WORK))


@dataclass
class ShardResult:
    """What a sharded forward and backward measured over the whole batch."""

    loss: float  # mean cross-entropy over the batch's counted tokens
    tokens: int  # counted (non-ignored) target tokens
    correct: int  # of those, how many the argmax predicted


class DataParallel:
    """Runs forward, loss and backward of a batch as `shards` row slices on replicas.

    `step(inputs, targets)` fills `model.packed.grad` (which the caller zeroes) and returns a
    ShardResult. `inputs` is a tuple of (B, ...) arrays passed to `model.forward` row-sliced.
    """

    def __init__(self, model, shards: int, loss_fn: CrossEntropyLoss):
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")
        self.model = model
        self.shards = shards
        self.loss_fns = [loss_fn] + [CrossEntropyLoss(loss_fn.ignore_id, loss_fn.label_smoothing)
                                     for _ in range(shards - 1)]
        self.replicas = [model] + [replica_of(model) for _ in range(shards - 1)]
        # Replicas' dropout draws from generators reseeded each step from the model's own, so
        # a run is reproducible (and resumable) from the model's generator state alone.
        self._source = next((m.rng for m in model.modules() if isinstance(m, Dropout)), None)
        self._replica_rngs = [[m.rng for m in r.modules() if isinstance(m, Dropout)]
                              for r in self.replicas[1:]]

    def step(self, inputs: tuple[np.ndarray, ...], targets: np.ndarray) -> ShardResult:
        """Forward + loss + backward of one batch; gradients summed into model.packed.grad."""
        rows = parallel.row_blocks(len(targets), self.shards)
        if len(rows) == 1 or active() is not None:
            # One pass when there is one shard's worth of rows, or when a recorder listens:
            # a trace is the story of one pass, not of interleaved shards.
            return self._one_pass(inputs, targets)
        n_shards = len(rows)
        self._reseed_replicas()
        for replica in self.replicas[1:n_shards]:
            replica.train(self.model.training)
        n_total = int(sum(self.loss_fns[0].keep_mask(targets[r]).sum() for r in rows))
        results: list[tuple[float, int, int]] = [(0.0, 0, 0)] * n_shards

        def run(j: int) -> None:
            replica, loss_fn, r = self.replicas[j], self.loss_fns[j], rows[j]
            if j:  # a replica's gradient holds only this step's shard (the caller zeroes ours)
                replica.packed.zero_grad()
            logits = replica.forward(*(x[r] for x in inputs))  # (b, T, V)
            loss = loss_fn.forward(logits, targets[r])
            replica.backward(loss_fn.backward(loss_fn.n_tokens / n_total if n_total else 0.0))
            correct, counted = token_hits(logits, targets[r], loss_fn.ignore_id)
            results[j] = (loss * loss_fn.n_tokens, correct, counted)

        def part(p: int, parts: int) -> None:
            for j in range(p, n_shards, parts):
                run(j)

        work = len(targets) * self.model.num_params()  # rows x params: any real batch splits
        parallel.for_each_part(work, part, max_parts=n_shards)
        grad = self.model.packed.grad
        for replica in self.replicas[1:n_shards]:
            parallel.add(grad, replica.packed.grad, out=grad)
        loss_sum = sum(r[0] for r in results)
        return ShardResult(loss=loss_sum / n_total if n_total else 0.0, tokens=n_total,
                           correct=sum(r[1] for r in results))

    def _one_pass(self, inputs: tuple[np.ndarray, ...], targets: np.ndarray) -> ShardResult:
        loss_fn = self.loss_fns[0]
        logits = self.model.forward(*inputs)
        loss = loss_fn.forward(logits, targets)
        self.model.backward(loss_fn.backward())
        correct, counted = token_hits(logits, targets, loss_fn.ignore_id)
        return ShardResult(loss=loss, tokens=counted, correct=correct)

    def _reseed_replicas(self) -> None:
        if self._source is None:
            return
        for generators in self._replica_rngs:
            seed = int(self._source.integers(2**63))
            for generator in generators:
                generator.bit_generator.state = np.random.PCG64(seed).state


def replica_of(model):
    """A model of the same config whose params are views of `model`'s values (no copy), with
    its own gradients; what it computes, it computes with the model's current weights."""
    replica = build_model(model.config)
    replica.packed.share_values(model.packed)
    return replica
