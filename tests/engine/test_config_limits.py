"""Model settings that cannot work are refused before any array exists; sizes are known
before building."""
import itertools
import math

import pytest

from engine.maths.config import ConfigError, DecoderOnlyConfig, EncoderDecoderConfig, config_from_dict
from engine.maths.models import build_model
from engine.maths.sizes import format_bytes, model_bytes, parameter_count, training_bytes


@pytest.mark.parametrize("change, message", [
    ({"ln_eps": math.inf}, r"ln_eps must be a positive number \(not inf or nan\)"),
    ({"ln_eps": math.nan}, "ln_eps must be a positive number"),
    ({"init_std": math.inf}, "init_std must be a positive number"),
    ({"dropout": math.nan}, r"dropout must be in \[0, 1\)"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"seed": 2**63}, "seed must be a whole number from 0"),
    ({"seed": "1"}, "seed must be a whole number"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"pad_id": "0"}, "pad_id"),
    ({"scale_embedding": "yes"}, "scale_embedding must be true or false"),
    ({"activation": ["relu"]}, "activation must be one of"),
])
def test_model_config_refuses_what_cannot_work(change, message):
    with pytest.raises(ConfigError, match=message):
        DecoderOnlyConfig(**change).validate()


def test_divisor_hint_is_instant_for_huge_widths():
    # the hint used to loop over every integer up to d_model (2**63-1 never returned)
    with pytest.raises(ConfigError, match=r"try n_heads in \[1, 7, 49\]"):
        DecoderOnlyConfig(d_model=2**63 - 1, n_heads=2).validate()


def test_config_from_dict_refuses_wrong_json_types():
    for data in ([], {"kind": ["decoder_only"]}, {"kind": "decoder_only", "breaks": [1]},
                 {"kind": "decoder_only", "seed": -5}):
        with pytest.raises(ConfigError):
            config_from_dict(data)


@pytest.mark.parametrize("cls, positional, norm, tie", list(itertools.product(
    [DecoderOnlyConfig, EncoderDecoderConfig], ["sinusoidal", "learned"], ["pre", "post"],
    [False, True])))
def test_parameter_count_matches_the_built_model(cls, positional, norm, tie):
    config = cls(vocab_size=11, d_model=12, n_heads=3, d_ff=7, n_layers=2, max_len=9,
                 positional=positional, norm=norm, tie_embeddings=tie)
    assert parameter_count(config) == build_model(config).num_params()


def test_sizes_of_absurd_settings_are_computed_without_building():
    huge = DecoderOnlyConfig(d_model=10**12, n_heads=1, n_layers=10**12, max_len=10**9)
    assert model_bytes(huge) > 10**30
    assert training_bytes(huge, 10**9, 10**9) > model_bytes(huge)
    assert format_bytes(1536) == "1.5 KiB" and "TiB" in format_bytes(model_bytes(huge))
    assert len(format_bytes(model_bytes(huge))) < 20
