"""Flip a break-it switch of a built model: the one way to rebuild it with the same weights.

The switches (`BreakSwitches` in engine.maths.config) are part of a model's config, so a
switch takes a new model; it gets every weight of the old one and its train/eval mode, so
the same batch runs through the same numbers with one part of the transformer broken.
"""
from __future__ import annotations

import dataclasses

from .config import BreakSwitches
from .models import DecoderOnlyLM, EncoderDecoder, build_model

SWITCHES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BreakSwitches))


def with_break(model: DecoderOnlyLM | EncoderDecoder, name: str
               ) -> tuple[DecoderOnlyLM | EncoderDecoder, bool]:
    """(a new model with switch `name` flipped and `model`'s weights and mode, the switch's
    new value). ValueError naming the switches for an unknown name."""
    if name not in SWITCHES:
        raise ValueError(f"no break switch {name!r}; switches are {list(SWITCHES)}")
    config = model.config
    value = not getattr(config.breaks, name)
    breaks = dataclasses.replace(config.breaks, **{name: value})
    new = build_model(dataclasses.replace(config, breaks=breaks),
                      {p.name: p.data for p in model.params()})  # copied into the new model
    new.train(model.training)
    return new, value
