"""A ConfigError names its field as data, not only in words; choice fields are Literal types
whose args are the one list of choices that validation checks."""
import dataclasses
import math
import typing

import pytest

from engine.maths.config import (BreakSwitches, ConfigError, DecoderOnlyConfig, ModelConfig,
                                 choices_of, config_from_dict)
from engine.maths.optim import OPTIMIZERS, OptimizerName
from engine.maths.schedule import SCHEDULES, ScheduleName, build_schedule
from engine.training.train_config import TrainConfig, train_config_from_dict

MODEL_ERRORS = [
    ({"vocab_size": 0}, "vocab_size"), ({"d_model": -1}, "d_model"), ({"n_heads": 0}, "n_heads"),
    ({"d_ff": 1.5}, "d_ff"), ({"n_layers": True}, "n_layers"), ({"max_len": 0}, "max_len"),
    ({"d_model": 30, "n_heads": 4}, "d_model"), ({"dropout": 1.0}, "dropout"),
    ({"activation": "tanh"}, "activation"), ({"norm": "middle"}, "norm"),
    ({"positional": "rotary"}, "positional"), ({"dtype": "float16"}, "dtype"),
    ({"scale_embedding": 1}, "scale_embedding"), ({"tie_embeddings": "yes"}, "tie_embeddings"),
    ({"breaks": {"no_scaling": True}}, "breaks"),
    ({"breaks": BreakSwitches(no_residual=1)}, "breaks.no_residual"),
    ({"pad_id": 99}, "pad_id"), ({"ln_eps": math.nan}, "ln_eps"), ({"init_std": 0}, "init_std"),
    ({"seed": -1}, "seed"),
]


@pytest.mark.parametrize("change, field", MODEL_ERRORS)
def test_model_config_errors_carry_their_field(change, field):
    with pytest.raises(ConfigError) as info:
        DecoderOnlyConfig(**change).validate()
    assert info.value.field == field
    assert str(info.value).startswith(field)  # the words name the same field


TRAIN_ERRORS = [
    ({"steps": 0}, "steps"), ({"batch_size": 0}, "batch_size"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr": 0}, "lr"), ({"betas": (0.9,)}, "betas"), ({"betas": (0.9, 1.0)}, "betas"),
    ({"eps": math.inf}, "eps"), ({"weight_decay": -1}, "weight_decay"), ({"momentum": 1}, "momentum"),
    ({"schedule": "linear"}, "schedule"), ({"warmup_steps": -1}, "warmup_steps"),
    ({"schedule": "inverse_sqrt"}, "warmup_steps"),
    ({"schedule": "cosine", "warmup_steps": 5000}, "warmup_steps"),
    ({"min_lr": 1.0}, "min_lr"), ({"clip_norm": -1.0}, "clip_norm"),
    ({"label_smoothing": 1.0}, "label_smoothing"), ({"seed": 2**64}, "seed"),
    ({"eval_every": -1}, "eval_every"), ({"shards": 0}, "shards"),
    ({"shards": 64, "batch_size": 8}, "shards"),
]


@pytest.mark.parametrize("change, field", TRAIN_ERRORS)
def test_train_config_errors_carry_their_field(change, field):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**change).validate()
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_errors_about_no_single_field_say_so():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"kind": "decoder_only", "colour": "red"})
    assert info.value.field is None
    with pytest.raises(ConfigError) as info:
        train_config_from_dict({"stepz": 3})
    assert info.value.field is None
    with pytest.raises(ConfigError) as info:
        config_from_dict({"kind": "gpt"})
    assert info.value.field == "kind"


CHOICES = [(ModelConfig, "activation"), (ModelConfig, "norm"), (ModelConfig, "positional"),
           (ModelConfig, "dtype"), (TrainConfig, "optimizer"), (TrainConfig, "schedule")]


@pytest.mark.parametrize("config_type, name", CHOICES)
def test_choice_fields_are_literals_and_validation_lists_exactly_their_args(config_type, name):
    hint = typing.get_type_hints(config_type)[name]
    assert typing.get_origin(hint) is typing.Literal
    choices = typing.get_args(hint)
    assert choices_of(config_type, name) == choices
    default = getattr(config_type(), name)
    assert default in choices
    for choice in choices:  # every choice the type allows validates
        config = dataclasses.replace(config_type(), **{name: choice})
        if name == "schedule" and choice == "inverse_sqrt":
            config = dataclasses.replace(config, warmup_steps=10)
        config.validate()
    with pytest.raises(ConfigError, match=rf"^{name} must be one of {list(choices)!r}".replace("[", r"\[")):
        dataclasses.replace(config_type(), **{name: "nonsense"}).validate()


def test_the_engine_builds_every_optimizer_and_schedule_the_types_allow():
    assert set(OPTIMIZERS) == set(typing.get_args(OptimizerName))
    assert SCHEDULES == typing.get_args(ScheduleName)
    for name in SCHEDULES:
        assert build_schedule(name, 1e-3, warmup_steps=10, total_steps=100)(5) > 0


def test_a_scenario_file_key_comes_from_the_errors_field():
    from scenarios import ScenarioError, build_scenario

    with pytest.raises(ScenarioError) as info:
        build_scenario("reverse", model={"d_model": 30, "n_heads": 4})
    assert info.value.key == "model.d_model"
    with pytest.raises(ScenarioError) as info:
        build_scenario("reverse", train={"betas": [0.9, 1.5]})
    assert info.value.key == "train.betas" and str(info.value).startswith("train.betas[1] must be")
    with pytest.raises(ScenarioError) as info:
        build_scenario("reverse", model={"norm": 3})
    assert info.value.key == "model.norm" and 'like "post"' in str(info.value)
