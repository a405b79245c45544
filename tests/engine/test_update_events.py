"""The optimizer's update as trace events: their numbers are the optimizer's own, and recording
changes no number of the step."""
import numpy as np
import pytest

from engine.maths.facts import facts_by_path
from engine.maths.optim import build_optimizer
from engine.maths.recorder import BACKWARD, FORWARD, UPDATE, Recorder, recording
from engine.trace.formulas import explain
from engine.trace.navigation import Cursor
from engine.trace.trace import Trace
from engine.training.trainer import Trainer
from engine.training.train_config import TrainConfig
from test_optim import OPTIMIZER_CASES, STEPS, grads_per_step, make_packed
from test_train import copy_batch, enc_dec


def set_grads(packed, grads):
    for param in packed.params:
        param.grad[...] = grads[param.name]


@pytest.mark.parametrize("name, settings", OPTIMIZER_CASES)
def test_update_events_hold_the_optimizers_own_numbers(name, settings):
    traced, plain = make_packed(), make_packed()
    opt_traced = build_optimizer(name, traced, **settings)
    opt_plain = build_optimizer(name, plain, **settings)
    lr = settings["lr"]
    for step, grads in enumerate(grads_per_step(), start=1):
        set_grads(traced, grads)
        set_grads(plain, grads)
        before = traced.data.copy()
        with recording() as rec:
            opt_traced.step()
        opt_plain.step()
        # recording changes no number: weights and state bit for bit equal to the untraced run
        assert np.array_equal(traced.data, plain.data)
        for key in opt_plain.state_keys:
            assert np.array_equal(getattr(opt_traced, key), getattr(opt_plain, key))
        events = rec.events
        assert [e.path for e in events] == [p.name for p in traced.params]
        assert {e.phase for e in events} == {UPDATE}
        for event, param in zip(events, traced.params):
            part = traced.slices[param.name]
            t = event.tensors
            assert np.array_equal(t["w_before"], before[part].reshape(param.data.shape))
            assert np.array_equal(t["w_after"], param.data)  # the weight after the step
            decay = 1.0 - lr * settings.get("weight_decay", 0.01) if name == "adamw" else 1.0
            assert np.array_equal(t["w_after"], (t["w_before"] * decay if decay != 1.0
                                                 else t["w_before"]) - t["update"])
            wd = 0.0 if name == "adamw" else settings.get("weight_decay", 0.0)
            assert np.allclose(t["grad"], grads[param.name] + wd * t["w_before"], rtol=1e-12)
            if name == "sgd":
                if settings.get("momentum"):
                    velocity = opt_traced.momentum_buffer[part].reshape(param.data.shape)
                    assert np.array_equal(t["velocity"], velocity)
                    assert np.allclose(t["update"], lr * velocity, rtol=1e-12)
                else:
                    assert "velocity" not in t
                    assert np.allclose(t["update"], lr * t["grad"], rtol=1e-12)
            else:
                m = opt_traced.exp_avg[part].reshape(param.data.shape)
                v = opt_traced.exp_avg_sq[part].reshape(param.data.shape)
                assert np.array_equal(t["m"], m) and np.array_equal(t["v"], v)
                beta1, beta2 = opt_traced.betas
                assert np.allclose(t["m_hat"], m / (1 - beta1**step), rtol=1e-12)
                assert np.allclose(t["v_hat"], v / (1 - beta2**step), rtol=1e-12)
                eps = opt_traced.eps
                assert np.allclose(t["update"], lr * t["m_hat"] / (np.sqrt(t["v_hat"]) + eps),
                                   rtol=1e-9)
            explained = explain(event)
            assert not explained.generic
            assert f"step" in explained.shapes and explained.shapes.isascii()
    assert step == STEPS


def test_the_explanations_name_the_variant():
    packed = make_packed()
    for name, settings, key, variant in [("sgd", {"lr": 0.1}, "sgd.update", "plain"),
                                         ("sgd", {"lr": 0.1, "momentum": 0.9}, "sgd.update", ""),
                                         ("adam", {"lr": 0.1, "weight_decay": 0.1},
                                          "adam.update", "l2"),
                                         ("adamw", {"lr": 0.1}, "adamw.update", "")]:
        optimizer = build_optimizer(name, packed, **settings)
        with recording() as rec:
            optimizer.step()
        found = explain(rec.events[0])
        assert (found.key, found.variant) == (key, variant)
    assert "v_hat" in found.formula_ascii and "1 - lr*wd" in found.shapes


def traced_step(trainer):
    model = trainer.model
    recorder = Recorder(long_lived=[p.data for p in model.params()],
                        facts=facts_by_path([model, trainer.loss_fn]))
    with recording(recorder):
        stats = trainer.step()
    return stats, recorder.events


@pytest.mark.parametrize("optimizer, extra", [("adamw", {"weight_decay": 0.01}),
                                              ("sgd", {"momentum": 0.9})])
def test_a_traced_training_step_equals_an_untraced_one_and_ends_with_the_update(optimizer, extra):
    config = TrainConfig(steps=4, optimizer=optimizer, lr=3e-3, seed=3, clip_norm=0.5, **extra)
    traced = Trainer(enc_dec(dropout=0.1), config, copy_batch())
    plain = Trainer(enc_dec(dropout=0.1), config, copy_batch())
    for _ in range(3):
        stats, events = traced_step(traced)
        assert stats.loss == plain.step().loss
        assert np.array_equal(traced.model.packed.data, plain.model.packed.data)
    phases = [e.phase for e in events]
    first_update = phases.index(UPDATE)
    assert set(phases[:first_update]) == {FORWARD, BACKWARD}
    assert set(phases[first_update:]) == {UPDATE}
    assert len(phases) - first_update == len(traced.model.params())
    trace = Trace(events, traced.model.config, None, stats.loss, None, [], [])
    assert trace.first_update == first_update
    cursor = Cursor(trace).to_first_update()
    assert cursor.event.phase == UPDATE and cursor.index == first_update
    # the update's weight after is the model's weight now
    for event in events[first_update:]:
        param = next(p for p in traced.model.params() if p.name == event.path)
        assert np.array_equal(event.tensors["w_after"], param.data)
    # an update event is never taken for the backward event at its place
    assert all(e.phase == BACKWARD for e in trace.index.backward.values())
