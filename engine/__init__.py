"""A transformer written from scratch in NumPy: every forward and every backward by hand.

The engine imports nothing of the UI; use it from a plain Python shell:

    from engine import DecoderOnlyConfig, build_model
    model = build_model(DecoderOnlyConfig(vocab_size=16))
    logits = model.forward(ids)          # (B, T, V)
"""
from .maths.config import (BreakSwitches, ConfigError, DecoderOnlyConfig, EncoderDecoderConfig,
                     ModelConfig, config_from_dict)
from .maths.models import DecoderOnlyLM, EncoderDecoder, build_model
from .maths.param import Module, PackedParams, Param
from .maths.recorder import Event, Recorder, recording

__all__ = [
    "BreakSwitches", "ConfigError", "DecoderOnlyConfig", "DecoderOnlyLM", "EncoderDecoder",
    "EncoderDecoderConfig", "Event", "ModelConfig", "Module", "PackedParams", "Param", "Recorder",
    "build_model", "config_from_dict", "recording",
]
