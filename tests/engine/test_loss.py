"""Cross-entropy loss: gradients by finite differences, padding, smoothing, and PyTorch parity."""
import numpy as np
import pytest

from engine.trace.gradcheck import numeric_grad, rel_error
from engine.maths.loss import CrossEntropyLoss, token_accuracy, token_hits
from engine.maths.recorder import recording

B, T, V = 3, 4, 7
PAD = 0


def make(seed=0, pad_positions=((0, 3), (1, 2), (1, 3)), dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((B, T, V)).astype(dtype) * 2.0
    targets = rng.integers(1, V, size=(B, T))
    for b, t in pad_positions:
        targets[b, t] = PAD
    return logits, targets


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35])
@pytest.mark.parametrize("ignore_id", [PAD, None])
def test_backward_matches_finite_differences(smoothing, ignore_id):
    logits, targets = make(seed=1)
    scale = float(np.random.default_rng(2).uniform(0.5, 3.0))  # random upstream gradient
    loss_fn = CrossEntropyLoss(ignore_id, smoothing)
    loss_fn.forward(logits, targets)
    analytic = loss_fn.backward(scale)
    # eps 1e-5, not 1e-6: the loss is O(1), so at 1e-6 rounding (1e-16 / eps) swamps small grads
    numeric = numeric_grad(lambda: scale * loss_fn.forward(logits, targets), logits, eps=1e-5)
    assert rel_error(analytic, numeric).max() <= 1e-6


def test_ignored_positions_get_zero_gradient_and_do_not_count():
    logits, targets = make(seed=3)
    loss_fn = CrossEntropyLoss(PAD)
    loss = loss_fn.forward(logits, targets)
    d = loss_fn.backward()
    assert np.all(d[targets == PAD] == 0)
    assert loss_fn.n_tokens == int((targets != PAD).sum())
    # changing the logits at pad positions changes nothing
    logits2 = logits.copy()
    logits2[targets == PAD] += 100.0
    assert CrossEntropyLoss(PAD).forward(logits2, targets) == pytest.approx(loss, rel=1e-12)


def test_loss_is_mean_over_counted_tokens():
    logits, targets = make(seed=4)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    keep = targets != PAD
    expected = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0][keep].mean()
    assert CrossEntropyLoss(PAD).forward(logits, targets) == pytest.approx(expected, rel=1e-12)


def test_label_smoothing_matches_smoothed_target_formula():
    logits, targets = make(seed=5)
    eps = 0.2
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    q = np.full(logits.shape, eps / V) + (1 - eps) * np.eye(V)[targets]
    keep = targets != PAD
    expected = -(q * log_p).sum(-1)[keep].mean()
    loss_fn = CrossEntropyLoss(PAD, eps)
    assert loss_fn.forward(logits, targets) == pytest.approx(expected, rel=1e-12)
    assert np.allclose(loss_fn.backward()[keep], (np.exp(log_p) - q)[keep] / keep.sum())


def test_all_ignored_batch_gives_zero_loss_and_zero_grads():
    logits, _ = make()
    targets = np.full((B, T), PAD)
    loss_fn = CrossEntropyLoss(PAD, 0.1)
    assert loss_fn.forward(logits, targets) == 0.0
    d = loss_fn.backward()
    assert np.all(d == 0) and np.all(np.isfinite(d))


def test_huge_logits_stay_finite():
    logits, targets = make()
    logits *= 1e4  # naive exp would overflow
    loss_fn = CrossEntropyLoss(PAD)
    assert np.isfinite(loss_fn.forward(logits, targets))
    assert np.all(np.isfinite(loss_fn.backward()))
    assert np.allclose(loss_fn.probs.sum(-1), 1.0)


def test_float32_stays_float32():
    logits, targets = make(dtype=np.float32)
    loss_fn = CrossEntropyLoss(PAD)
    loss_fn.forward(logits, targets)
    assert loss_fn.backward().dtype == np.float32 and loss_fn.probs.dtype == np.float32


@pytest.mark.parametrize("bad_targets, message", [
    (np.ones((B, T + 1), dtype=int), "targets shape"),
    (np.full((B, T), V), f"outside \\[0, {V}\\)"),
    (np.full((B, T), -1), "outside"),
    (np.ones((B, T)) * 1.0, "integer"),
])
def test_bad_targets_are_named(bad_targets, message):
    logits, _ = make()
    with pytest.raises(ValueError, match=message):
        CrossEntropyLoss(PAD).forward(logits, bad_targets)


def test_ignore_id_outside_vocabulary_is_allowed():
    logits, targets = make(pad_positions=())
    targets[0, 0] = -100  # torch's default ignore_index
    loss_fn = CrossEntropyLoss(-100)
    loss_fn.forward(logits, targets)
    assert loss_fn.n_tokens == B * T - 1


@pytest.mark.parametrize("eps", [-0.1, 1.0, 2])
def test_bad_label_smoothing_is_named(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(PAD, eps)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        CrossEntropyLoss(PAD).backward()


def test_recording_emits_softmax_and_cross_entropy_events():
    logits, targets = make()
    loss_fn = CrossEntropyLoss(PAD, path="loss")
    with recording() as rec:
        loss = loss_fn.forward(logits, targets)
        d = loss_fn.backward()
    got = [(e.phase, e.path, e.op) for e in rec.events]
    assert got == [("forward", "loss.softmax", "output_softmax"),
                   ("forward", "loss.cross_entropy", "cross_entropy"),
                   ("backward", "loss.cross_entropy", "cross_entropy")]
    assert np.array_equal(rec.events[0].tensors["probs"], loss_fn.probs)
    assert rec.events[1].tensors["loss"].shape == () and float(rec.events[1].tensors["loss"]) == loss
    assert np.array_equal(rec.events[1].tensors["targets"], targets)
    assert np.array_equal(rec.events[2].tensors["d_logits"], d)


def test_token_accuracy_counts_only_non_pad():
    logits = np.zeros((1, 3, 4))
    logits[0, 0, 2] = logits[0, 1, 1] = logits[0, 2, 3] = 1.0  # predicts 2, 1, 3
    targets = np.array([[2, 3, PAD]])
    assert token_hits(logits, targets, PAD) == (1, 2)
    assert token_accuracy(logits, targets, PAD) == 0.5
    assert token_accuracy(logits, np.full((1, 3), PAD), PAD) == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_torch(smoothing):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the loss")
    logits, targets = make(seed=7)
    loss_fn = CrossEntropyLoss(PAD, smoothing)
    loss = loss_fn.forward(logits, targets)
    scale = 1.7
    d = loss_fn.backward(scale)
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, V), torch.tensor(targets).reshape(-1),
                                               ignore_index=PAD, label_smoothing=smoothing)
    (t_loss * scale).backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(d, t_logits.grad.numpy(), rtol=1e-10, atol=1e-14)
