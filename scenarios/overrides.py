"""Typed overrides of a settings dataclass, checked before anything is built.

A scenario file sets fields of three dataclasses (the task's data settings, `ModelConfig`,
`TrainConfig`) by name. `apply_overrides` turns {name: value} into a new dataclass instance
or a `SettingError` that names the key and says how to fix it: an unknown name (with the
closest known one), a value of the wrong type, a value a field cannot take.

TOML has no null, so a field that may be None (clip_norm) takes the string "none".
"""
from __future__ import annotations

import dataclasses
import difflib
import reprlib
import types
import typing
from typing import Any


class ScenarioError(ValueError):
    """A scenario that cannot be built; names the setting (`key`, like "model.d_model") and the fix."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key  # dotted place of the bad setting, or None when no single key is at fault
        self.reason = message  # the message without any file name in front


class SettingError(ScenarioError):
    """One bad override."""


def apply_overrides(base: Any, overrides: dict[str, Any], section: str,
                    forbidden: dict[str, str] | None = None) -> Any:
    """A copy of dataclass instance `base` with `overrides` applied, type-checked.

    `section` prefixes keys in messages ("model" -> "model.d_model"); `forbidden` maps a field
    name to why it cannot be set (it is derived from something else).
    """
    forbidden = forbidden or {}
    hints = typing.get_type_hints(type(base))
    known = [f.name for f in dataclasses.fields(base)]
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        key = f"{section}.{short(name)}"
        if name in forbidden:
            raise SettingError(f"{key} cannot be set: {forbidden[name]}; remove it", key)
        if name not in known:
            settable = [k for k in known if k not in forbidden]
            close = difflib.get_close_matches(name, settable, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SettingError(f"{key} is not a setting; {hint}known settings in [{section}] are: "
                               f"{', '.join(settable)}", key)
        changes[name] = convert(value, hints[name], key, getattr(base, name))
    return dataclasses.replace(base, **changes)


def convert(value: Any, hint: Any, key: str, current: Any = None) -> Any:
    """`value` as type `hint`, or a SettingError saying what was expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value == "none":
            return None
        try:
            return convert(value, options[0], key, current)
        except SettingError as error:
            raise SettingError(f"{error.reason} (or \"none\" to turn it off)", key) from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, value, "true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, value, "a whole number, like 64")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, value, "a number, like 0.001")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, value, 'a string in quotes, like "relu"')
    if origin is typing.Literal:  # a choice: the config's validate() names the choices
        if isinstance(value, str):
            return value
        raise _type_error(key, value, f'a string in quotes, like "{typing.get_args(hint)[0]}"')
    if origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, list) and len(value) == len(args):
            return tuple(convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        raise _type_error(key, value, f"a list of {len(args)} values, like [0.9, 0.98]")
    if dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            section = key
            return apply_overrides(current if current is not None else hint(), value, section)
        raise _type_error(key, value, f"a table [{key}] of settings")
    raise SettingError(f"{key} has a type ({hint}) that scenario files cannot set", key)


def _type_error(key: str, value: Any, expected: str) -> SettingError:
    return SettingError(f"{key} must be {expected}, not {_describe(value)}", key)


def _describe(value: Any) -> str:
    kinds = {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({short_repr(value)})"


_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 2, 3, 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 40


def short_repr(value: Any) -> str:
    """repr() of a value from a file, at most a few dozen characters and never recursing deep:
    a 1 MB string or a list nested 1,000 deep must not become the message."""
    return _REPR.repr(value)


def short(name: Any, limit: int = 40) -> str:
    """A key from a file as it appears in a message: control characters escaped (a message
    stays one line), cut to `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name)[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."
