"""Cross-entropy loss over the output vocabulary, with padding ignored and label smoothing.

For one target position with logits z (V,) and target id y:

    p      = softmax(z)                              probabilities over the vocabulary
    q      = (1 - eps) * onehot(y) + eps / V         the smoothed target distribution
    loss   = -sum_v q_v * log p_v                    cross-entropy between q and p
    d loss / d z = p - q                             the whole backward, one subtraction

The batch loss is the mean over the positions whose target is not `ignore_id` (padding), so a
batch with more padding does not get a smaller loss. This is exactly
torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
ignore_index=ignore_id, label_smoothing=eps).

log p is computed as z - max(z) - log(sum(exp(z - max(z)))): subtracting the row maximum keeps
exp from overflowing, and taking the log of the sum (never of a tiny probability) keeps it exact.

Shapes: B batch, T target length, V vocabulary, N = B*T positions.
"""
from __future__ import annotations

import numpy as np

from .facts import TARGET, Facts
from .param import Module
from .recorder import active


class CrossEntropyLoss(Module):
    """Mean cross-entropy over non-ignored positions; no parameters.

    forward(logits, targets) -> float keeps `probs` (B, T, V) for backward and for display.
    backward(scale) -> d_logits (B, T, V), the gradient of `scale * loss`.
    """

    def __init__(self, ignore_id: int | None, label_smoothing: float = 0.0, path: str = "loss"):
        super().__init__(path)
        # it reads the target stream's logits (B, T, V): one axis over the vocabulary
        self.facts = Facts(rows=TARGET, vocabulary=True, block=path, sublayer=path)
        is_id = isinstance(ignore_id, (int, np.integer)) and not isinstance(ignore_id, bool)
        if not (ignore_id is None or is_id):
            raise ValueError(f"ignore_id must be an int token id or None, got {ignore_id!r}")
        if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(
                f"label_smoothing must be in [0, 1) (0 turns it off, 0.1 is the paper's), "
                f"got {label_smoothing!r}"
            )
        self.ignore_id = None if ignore_id is None else int(ignore_id)
        self.label_smoothing = float(label_smoothing)
        self.probs: np.ndarray | None = None  # (B, T, V) softmax of the last forward's logits
        self.targets: np.ndarray | None = None  # (B, T) the last forward's target ids
        self.keep: np.ndarray | None = None  # (B, T) bool: positions that count
        self.n_tokens = 0  # how many positions counted in the last forward
        self.loss: float | None = None

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:
        targets = self._check(logits, targets)
        vocab = logits.shape[-1]
        eps = self.label_smoothing
        keep = self.keep_mask(targets)  # (B, T)
        safe_targets = np.where(keep, targets, 0)  # (B, T) ignored ids replaced by a valid one

        shifted = logits - logits.max(axis=-1, keepdims=True)  # (B, T, V), max is 0
        exp = np.exp(shifted)  # (B, T, V) in (0, 1]
        sum_exp = exp.sum(axis=-1, keepdims=True)  # (B, T, 1) >= 1, so its log is safe
        log_probs = shifted - np.log(sum_exp)  # (B, T, V)
        probs = exp / sum_exp  # (B, T, V)

        nll = -np.take_along_axis(log_probs, safe_targets[..., None], axis=-1)[..., 0]  # (B, T)
        per_position = (1.0 - eps) * nll
        if eps:
            per_position = per_position - eps * log_probs.mean(axis=-1)  # (B, T) uniform part
        n_tokens = int(keep.sum())
        loss = float(per_position[keep].sum() / n_tokens) if n_tokens else 0.0

        self.probs, self.targets, self.keep = probs, targets, keep
        self.n_tokens, self.loss = n_tokens, loss
        rec = active()
        if rec:
            self._record_forward(rec, logits, vocab)
        return loss

    def backward(self, scale: float = 1.0) -> np.ndarray:
        """d(scale * loss)/d logits = scale * (p - q) / n_tokens, zero rows where ignored."""
        if self.probs is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward; call forward first")
        probs, vocab, eps = self.probs, self.probs.shape[-1], self.label_smoothing
        d_logits = probs.copy()  # (B, T, V) starts as p
        if eps:
            d_logits -= probs.dtype.type(eps / vocab)  # the uniform part of q
        safe_targets = np.where(self.keep, self.targets, 0)  # (B, T)
        rows = np.take_along_axis(d_logits, safe_targets[..., None], axis=-1)  # (B, T, 1)
        np.put_along_axis(d_logits, safe_targets[..., None], rows - (1.0 - eps), axis=-1)
        d_logits[~self.keep] = 0  # padding positions do not contribute
        if self.n_tokens:
            d_logits *= probs.dtype.type(scale / self.n_tokens)
        rec = active()
        if rec:
            rec.backward(f"{self.path}.cross_entropy", "cross_entropy", {"d_logits": d_logits},
                         scale=scale, n_tokens=self.n_tokens)
        return d_logits

    def keep_mask(self, targets: np.ndarray) -> np.ndarray:
        """(B, T) bool: the positions whose target counts (is not `ignore_id`)."""
        if self.ignore_id is None:
            return np.ones(targets.shape, dtype=bool)
        return targets != self.ignore_id

    # -- helpers ------------------------------------------------------------------------------

    def _check(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Validate shapes and ids; returns targets as an integer array."""
        is_float = isinstance(logits, np.ndarray) and np.issubdtype(logits.dtype, np.floating)
        if not is_float or logits.ndim < 2:
            raise ValueError(
                f"logits must be a float array shaped (B, T, V), got "
                f"{getattr(logits, 'dtype', type(logits).__name__)} {np.shape(logits)}"
            )
        targets = np.asarray(targets)
        if targets.shape != logits.shape[:-1]:
            raise ValueError(
                f"targets shape {targets.shape} must equal logits shape without the vocabulary "
                f"axis {logits.shape[:-1]}; pass the ids the model should predict, one per position"
            )
        if targets.size and not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets must be integer token ids, got dtype {targets.dtype}")
        vocab = logits.shape[-1]
        counted = targets[self.keep_mask(targets)]
        if counted.size and (counted.min() < 0 or counted.max() >= vocab):
            bad = counted[(counted < 0) | (counted >= vocab)][0]
            raise ValueError(
                f"targets contain id {int(bad)} outside [0, {vocab}) (the vocabulary of the "
                f"logits); ignore_id is {self.ignore_id!r}. Check the tokenizer's vocab_size "
                f"matches the model's"
            )
        return targets

    def _record_forward(self, rec, logits: np.ndarray, vocab: int) -> None:
        rec.forward(f"{self.path}.softmax", "output_softmax",
                    {"logits": logits, "probs": self.probs}, vocab=vocab)
        rec.forward(f"{self.path}.cross_entropy", "cross_entropy",
                    {"probs": self.probs, "targets": self.targets,
                     "loss": np.array(self.loss, dtype=np.float64)},
                    ignore_id=self.ignore_id, label_smoothing=self.label_smoothing,
                    n_tokens=self.n_tokens)


def token_accuracy(logits: np.ndarray, targets: np.ndarray, ignore_id: int | None) -> float:
    """Fraction of non-ignored positions whose argmax logit is the target; 0.0 if none count."""
    correct, counted = token_hits(logits, targets, ignore_id)
    return correct / counted if counted else 0.0


def token_hits(logits: np.ndarray, targets: np.ndarray, ignore_id: int | None) -> tuple[int, int]:
    """(correct, counted) over non-ignored positions: sums across batches without bias."""
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets shape {targets.shape} must equal logits shape {logits.shape[:-1]}")
    keep = np.ones(targets.shape, dtype=bool) if ignore_id is None else targets != ignore_id
    predicted = logits.argmax(axis=-1)  # (B, T)
    return int((predicted == targets)[keep].sum()), int(keep.sum())
