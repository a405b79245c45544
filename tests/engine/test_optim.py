"""Optimizers and clipping against torch.optim on identical params and grads; schedules; factories."""
import math

import numpy as np
import pytest

from engine.maths.optim import SGD, Adam, AdamW, build_optimizer, clip_grad_norm
from engine.maths.param import Param, PackedParams
from engine.maths.schedule import (ConstantSchedule, InverseSqrtSchedule, WarmupCosineSchedule,
                             build_schedule)
from engine_threads import engine_threads  # noqa: E402,F401  (a fixture)

# Every test here runs inline and with operations split over two threads (conftest.py).
pytestmark = pytest.mark.usefixtures("engine_threads")

SHAPES = {"a.w": (4, 3), "a.b": (3,), "b.gamma": (5,)}
STEPS = 6


def make_packed(seed=0, dtype=np.float64) -> PackedParams:
    rng = np.random.default_rng(seed)
    params = [Param(name, rng.standard_normal(shape).astype(dtype)) for name, shape in SHAPES.items()]
    return PackedParams(params, np.dtype(dtype))


def grads_per_step(seed=1):
    """A different random gradient for each param at each step, shared by both libraries."""
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape) for name, shape in SHAPES.items()} for _ in range(STEPS)]


OPTIMIZER_CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.02, "betas": (0.9, 0.98), "eps": 1e-9, "weight_decay": 0.3}),
]


@pytest.mark.parametrize("name, settings", OPTIMIZER_CASES)
def test_optimizer_matches_torch(name, settings):
    torch = pytest.importorskip("torch", reason="torch.optim is the reference for the updates")
    packed = make_packed()
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in packed.params]
    torch_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    extra = {"weight_decay": 0.01} if name == "adamw" and "weight_decay" not in settings else {}
    reference = torch_cls(tensors, **settings, **extra)  # torch's AdamW default decay is 0.01 too
    ours = build_optimizer(name, packed, **settings)
    for grads in grads_per_step():
        for param, tensor in zip(packed.params, tensors):
            param.grad[...] = grads[param.name]
            tensor.grad = torch.tensor(grads[param.name])
        grad_before = packed.grad.copy()
        ours.step()
        reference.step()
        assert np.array_equal(packed.grad, grad_before), "the optimizer must not write the gradient"
    for param, tensor in zip(packed.params, tensors):
        np.testing.assert_allclose(param.data, tensor.detach().numpy(), rtol=1e-6, atol=1e-12)
    assert ours.step_count == STEPS


def test_step_lr_overrides_default_lr():
    a, b = make_packed(), make_packed()
    a.grad[...] = b.grad[...] = 1.0
    SGD(a, lr=0.5).step(lr=0.1)
    SGD(b, lr=0.1).step()
    assert np.array_equal(a.data, b.data)


def test_steps_allocate_no_new_buffers():
    packed = make_packed()
    opt = AdamW(packed, lr=0.01, weight_decay=0.1)
    packed.grad[...] = 1.0
    opt.step()
    buffers = (id(packed.data), id(opt.exp_avg), id(opt.exp_avg_sq), id(opt._denom))
    opt.step()
    assert (id(packed.data), id(opt.exp_avg), id(opt.exp_avg_sq), id(opt._denom)) == buffers
    assert packed.params[0].data.base is packed.data  # params still view the flat buffer


def test_float32_update_stays_float32():
    packed = make_packed(dtype=np.float32)
    packed.grad[...] = 1.0
    opt = Adam(packed, lr=0.01, weight_decay=0.1)
    opt.step()
    assert packed.data.dtype == np.float32 and opt.exp_avg.dtype == np.float32


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch", reason="torch clip_grad_norm_ is the reference")
    packed = make_packed()
    grads = grads_per_step()[0]
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in packed.params]
    for param, tensor in zip(packed.params, tensors):
        param.grad[...] = grads[param.name]
        tensor.grad = torch.tensor(grads[param.name])
    norm = clip_grad_norm(packed, max_norm)
    t_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert norm == pytest.approx(float(t_norm), rel=1e-12)
    for param, tensor in zip(packed.params, tensors):
        np.testing.assert_allclose(param.grad, tensor.grad.numpy(), rtol=1e-12)
    if max_norm < norm:
        assert packed.grad_norm() == pytest.approx(max_norm, rel=1e-5)


def test_clip_with_nonfinite_norm_leaves_grads():
    packed = make_packed()
    packed.grad[...] = 1.0
    packed.grad[0] = np.nan
    assert math.isnan(clip_grad_norm(packed, 1.0))
    assert np.all(packed.grad[1:] == 1.0)


@pytest.mark.parametrize("cls, settings", [(SGD, {"lr": 0.1, "momentum": 0.9}), (Adam, {"lr": 0.01}),
                                           (AdamW, {"lr": 0.01})])
def test_state_round_trip_resumes_exactly(cls, settings):
    grads = grads_per_step()
    full, half = make_packed(), make_packed()
    opt_full = cls(full, **settings)
    opt_half = cls(half, **settings)
    for i, g in enumerate(grads):
        for packed, opt in ((full, opt_full), (half, opt_half)):
            for p in packed.params:
                p.grad[...] = g[p.name]
            opt.step()
        if i == 2:  # save after three steps, continue in a brand-new optimizer
            state = opt_half.state_dict()
            assert all(isinstance(v, np.ndarray) for v in state.values())
            opt_half = cls(half, **settings)
            opt_half.load_state_dict(state)
    assert np.array_equal(full.data, half.data)


def test_load_state_rejects_wrong_keys_and_shapes():
    opt = Adam(make_packed(), lr=0.01)
    with pytest.raises(ValueError, match="keys"):
        opt.load_state_dict({"step": np.array(1)})
    state = opt.state_dict()
    state["exp_avg"] = np.zeros(3)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(state)


def test_factory_errors_name_the_known_optimizers():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'.*\['adam', 'adamw', 'sgd'\]"):
        build_optimizer("adagrad", make_packed(), lr=0.1)
    with pytest.raises(ValueError, match="bad settings for optimizer 'adam'"):
        build_optimizer("adam", make_packed(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        build_optimizer("sgd", make_packed(), lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        build_optimizer("adam", make_packed(), lr=0.1, betas=(0.9, 1.0))


# -- schedules --------------------------------------------------------------------------------
def test_constant_schedule_with_and_without_warmup():
    assert [ConstantSchedule(0.1)(s) for s in (1, 5, 1000)] == [0.1, 0.1, 0.1]
    warm = ConstantSchedule(0.1, warmup_steps=4)
    assert [warm(s) for s in (1, 2, 4, 5)] == pytest.approx([0.025, 0.05, 0.1, 0.1])


def test_inverse_sqrt_peaks_at_warmup_then_decays_as_inverse_root():
    sched = InverseSqrtSchedule(1e-3, warmup_steps=100)
    assert sched(1) == pytest.approx(1e-5)  # base * 1/100
    assert sched(50) == pytest.approx(5e-4)
    assert sched(100) == pytest.approx(1e-3)  # the peak equals base
    assert sched(400) == pytest.approx(5e-4)  # base * sqrt(100/400)
    # the paper's formula with d_model: d^-0.5 * min(s^-0.5, s w^-1.5), scaled by base / peak
    d, w = 512, 4000
    paper = lambda s: d**-0.5 * min(s**-0.5, s * w**-1.5)
    ours = InverseSqrtSchedule(paper(w), warmup_steps=w)
    for s in (1, 1000, 4000, 10000, 100000):
        assert ours(s) == pytest.approx(paper(s), rel=1e-12)


def test_cosine_warmup_then_decay_to_min_lr():
    sched = WarmupCosineSchedule(1.0, warmup_steps=10, total_steps=110, min_lr=0.1)
    assert sched(5) == pytest.approx(0.5)
    assert sched(10) == pytest.approx(1.0)
    assert sched(60) == pytest.approx(0.55)  # halfway: min + (base - min) / 2
    assert sched(110) == pytest.approx(0.1)
    assert sched(500) == pytest.approx(0.1)
    values = [sched(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_schedule_steps_count_from_one():
    with pytest.raises(ValueError, match="steps count from 1"):
        ConstantSchedule(0.1)(0)


def test_schedule_factory_and_errors():
    assert isinstance(build_schedule("inverse_sqrt", 0.1, warmup_steps=5), InverseSqrtSchedule)
    assert build_schedule("cosine", 0.1, 0, total_steps=10, min_lr=0.01)(10) == pytest.approx(0.01)
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'.*constant.*inverse_sqrt.*cosine"):
        build_schedule("linear", 0.1)
    with pytest.raises(ValueError, match="total_steps"):
        build_schedule("cosine", 0.1)
    with pytest.raises(ValueError, match="warmup_steps >= 1"):
        build_schedule("inverse_sqrt", 0.1)
    with pytest.raises(ValueError, match="min_lr"):
        build_schedule("cosine", 0.1, total_steps=10, min_lr=0.5)
