"""Typed model configurations.

One dataclass per model family. Every field has a comment; `validate()` turns an impossible
combination into a `ConfigError` that names the field and the fix, before any array exists.
A field with a few possible values is a `Literal` type, and validation reads the choices from
it (`choices_of`): the type is the one list of them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from typing import Any, Literal, get_args, get_origin, get_type_hints

import numpy as np

Activation = Literal["relu", "gelu"]
NormPlacement = Literal["post", "pre"]
Positional = Literal["sinusoidal", "learned"]
DType = Literal["float32", "float64"]


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field and the fix.

    `field` is the setting at fault as a settings file spells it ("d_model", "breaks.no_scaling",
    "betas"), or None when no single field is (an unknown key, a table that is not one)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass
class BreakSwitches:
    """Ways to break a transformer on purpose, for teaching what each part is for.

    All off by default. The trace checks (engine.trace.checks) flag what each one breaks.
    """

    no_causal_mask: bool = False  # decoder self-attention may look at future tokens
    no_scaling: bool = False  # skip the 1/sqrt(d_k) scaling of the attention scores
    softmax_wrong_axis: bool = False  # normalise attention over queries instead of keys
    no_residual: bool = False  # drop the skip connections: x + f(x) becomes f(x)
    no_positional: bool = False  # drop the positional encoding: order becomes invisible

    def active(self) -> list[str]:
        """Names of the switches that are on."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass
class ModelConfig:
    """Settings shared by both model families."""

    vocab_size: int = 16  # V: number of token ids (source and target share one vocabulary)
    d_model: int = 32  # D: width of every residual-stream vector
    n_heads: int = 4  # H: attention heads; d_model must be divisible by it (K = D / H)
    d_ff: int = 128  # F: hidden width of the position-wise feed-forward network
    n_layers: int = 2  # blocks per stack (each of encoder and decoder for encoder-decoder)
    max_len: int = 64  # longest sequence the positional encoding covers
    dropout: float = 0.0  # inverted-dropout probability, in [0, 1); used only in train mode
    activation: Activation = "relu"  # feed-forward nonlinearity: "relu" or "gelu" (tanh form)
    norm: NormPlacement = "post"  # "post": LayerNorm after the residual add (the paper); "pre": before (GPT-2)
    positional: Positional = "sinusoidal"  # "sinusoidal" (fixed) or "learned" position vectors
    scale_embedding: bool = True  # multiply token embeddings by sqrt(d_model), as the paper does
    tie_embeddings: bool = False  # output projection reuses the (target) token embedding matrix
    pad_id: int | None = 0  # token id that is padding: masked as a key, ignored by the loss
    ln_eps: float = 1e-5  # LayerNorm epsilon, inside the square root (PyTorch's definition)
    init_std: float = 0.02  # std of the normal initialisation of weight matrices
    dtype: DType = "float32"  # "float32" for training, "float64" for gradient checks
    seed: int = 0  # seeds initialisation and dropout
    breaks: BreakSwitches = field(default_factory=BreakSwitches)  # teaching switches, all off

    @property
    def d_head(self) -> int:
        """K: width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible field and how to fix it."""
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "n_layers", "max_len"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {quote_value(value)}", name)
        if self.d_model % self.n_heads:
            # divisors up to 64 only: a loop up to d_model takes minutes for d_model = 10**9
            small = [h for h in range(1, min(self.d_model, 64) + 1) if self.d_model % h == 0]
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}); "
                f"try n_heads in {small}", "d_model"
            )
        if not (_is_real(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"dropout must be in [0, 1), got {quote_value(self.dropout)}", "dropout")
        for name in ("activation", "norm", "positional", "dtype"):
            check_choice(self, name)
        for name in ("scale_embedding", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {quote_value(getattr(self, name))}",
                                  name)
        if not isinstance(self.breaks, BreakSwitches):
            raise ConfigError(f"breaks must be BreakSwitches, got {quote_value(self.breaks)}", "breaks")
        for name in self.breaks.__dataclass_fields__:
            if not isinstance(getattr(self.breaks, name), bool):
                raise ConfigError(f"breaks.{name} must be true or false, "
                                  f"got {quote_value(getattr(self.breaks, name))}", f"breaks.{name}")
        if self.pad_id is not None and not (_is_int(self.pad_id) and 0 <= self.pad_id < self.vocab_size):
            raise ConfigError(
                f"pad_id ({quote_value(self.pad_id)}) must be a token id in [0, {self.vocab_size}) or None",
                "pad_id")
        for name in ("ln_eps", "init_std"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number (not inf or nan), got "
                                  f"{quote_value(value)}", name)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be a whole number from 0 to 2**63-1, got "
                              f"{quote_value(self.seed)}", "seed")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, with the family name under "kind"."""
        return {"kind": self.kind, **asdict(self)}

    kind = "base"


@dataclass
class DecoderOnlyConfig(ModelConfig):
    """A GPT-style language model: causal self-attention blocks only."""

    kind = "decoder_only"


@dataclass
class EncoderDecoderConfig(ModelConfig):
    """The encoder-decoder Transformer of "Attention Is All You Need"."""

    kind = "encoder_decoder"


CONFIG_KINDS: dict[str, type[ModelConfig]] = {
    "decoder_only": DecoderOnlyConfig,
    "encoder_decoder": EncoderDecoderConfig,
}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from `to_dict()` output; unknown keys are an error, not ignored."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a table of settings, got {quote_value(data)}")
    data = dict(data)
    kind = data.pop("kind", None)
    if not isinstance(kind, str) or kind not in CONFIG_KINDS:
        raise ConfigError(f"kind must be one of {sorted(CONFIG_KINDS)}, got {quote_value(kind)}", "kind")
    cls = CONFIG_KINDS[kind]
    known = {f.name for f in fields(cls)}
    unknown = sorted(map(str, set(data) - known))
    if unknown:
        raise ConfigError(f"unknown config field(s) {quote_value(unknown)}; known fields are {sorted(known)}")
    breaks = data.pop("breaks", None) or {}
    if not isinstance(breaks, dict):
        raise ConfigError(f"breaks must be a table of switches, got {quote_value(breaks)}", "breaks")
    known_breaks = {f.name for f in fields(BreakSwitches)}
    bad = sorted(map(str, set(breaks) - known_breaks))
    if bad:
        raise ConfigError(f"unknown break switch(es) {quote_value(bad)}; known are {sorted(known_breaks)}",
                          "breaks")
    config = cls(**data, breaks=BreakSwitches(**breaks))
    config.validate()
    return config


@cache
def choices_of(config_type: type, name: str) -> tuple[str, ...]:
    """The values field `name` of dataclass `config_type` may take: the args of its Literal."""
    hint = get_type_hints(config_type)[name]
    if get_origin(hint) is not Literal:
        raise TypeError(f"{config_type.__name__}.{name} is not a Literal field")
    return get_args(hint)


def check_choice(config: object, name: str) -> None:
    """ConfigError (field `name`) unless the field's value is one of its Literal's choices."""
    value, choices = getattr(config, name), choices_of(type(config), name)
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {quote_value(value)}", name)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def quote_value(value: object, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters: a 1 MB value must not become a 1 MB message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
