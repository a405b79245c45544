"""Class mode: the settings that keep one machine fair when a whole class uses it at once.

A teacher turns it on for everyone with a small TOML file, or a student with `--class`:

    [class]
    enabled = true          # every session in class mode (the same as tui-tfs --class)
    training_nice = 10      # the training thread's nice value, 0-19 (19 yields the most)
    memory_limit_mb = 600   # per session: training pauses past this resident size (0: none)

The file is the first of: `--config FILE`, the TUI_TFS_CONFIG environment variable,
$XDG_CONFIG_HOME/tui-tfs/config.toml (~/.config/...), then each of $XDG_CONFIG_DIRS
(/etc/xdg) + /tui-tfs/config.toml, the place for a machine-wide file. A file that is named
but missing, not TOML, or holds an unknown key or a value out of range is one ConfigError
naming the file, the line and the fix. What class mode does with the settings is in
`fair_share.py`.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scenarios.lessons.toml_lines import KeyLines

CONFIG_VARIABLE = "TUI_TFS_CONFIG"
CONFIG_NAME = Path("tui-tfs") / "config.toml"
MAX_FILE_BYTES = 64 * 1024  # a settings file is a few lines; more is the wrong file
MAX_MEMORY_MB = 1024 * 1024  # 1 TB: past it a limit is a typo


@dataclass(frozen=True)
class ClassSettings:
    """What class mode does, and where the settings came from (for messages)."""

    enabled: bool = False  # class mode on: the training thread yields, memory is capped
    training_nice: int = 10  # nice value of the training thread (0 normal .. 19 lowest)
    memory_limit_mb: int = 600  # resident size past which training pauses; 0: no limit
    source: Path | None = None  # the config file read, None: the defaults
    # also lower the terminal session's scheduling group while training (Linux autogroup,
    # fair_share.SessionGroup); tests turn it off to leave the test runner's group alone
    lower_session_group: bool = True

    @property
    def where_to_change(self) -> str:
        """How a reader changes a setting: the file it came from, else where one would go."""
        if self.source is not None:
            return f"in {self.source}"
        return f"in a config file ({user_config_path()}, or tui-tfs --config FILE)"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the line and the fix."""


# what each key of [class] holds: (type, low, high, what a good value looks like)
KEYS: dict[str, tuple[type, int, int, str]] = {
    "enabled": (bool, 0, 1, "true or false"),
    "training_nice": (int, 0, 19, "a whole number from 0 (normal) to 19 (lowest), like 10"),
    "memory_limit_mb": (int, 0, MAX_MEMORY_MB,
                        "a whole number of megabytes, like 600 (0: no limit)"),
}


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/tui-tfs/config.toml, or ~/.config/tui-tfs/config.toml."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / CONFIG_NAME


def find_config(explicit: Path | None = None, env: Mapping[str, str] | None = None
                ) -> Path | None:
    """The config file to read (see the module docstring), or None when there is none. A file
    named by --config or TUI_TFS_CONFIG must exist."""
    env = os.environ if env is None else env
    named = explicit or (Path(env[CONFIG_VARIABLE]) if env.get(CONFIG_VARIABLE) else None)
    if named is not None:
        if not named.is_file():
            how = "--config" if explicit else CONFIG_VARIABLE
            raise ConfigError(f"{named}: no such file (named by {how}); write one with a "
                              f"[class] table, or name another file")
        return named
    places = [user_config_path(env)]
    places += [Path(d) / CONFIG_NAME
               for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d]
    return next((p for p in places if p.is_file()), None)


def load_settings(class_flag: bool = False, explicit: Path | None = None,
                  env: Mapping[str, str] | None = None) -> ClassSettings:
    """The settings of this run: the config file's (if any), with class mode on when
    `class_flag` (--class) is. ConfigError for a bad file."""
    path = find_config(explicit, env)
    settings = ClassSettings() if path is None else read_config(path)
    if class_flag and not settings.enabled:
        settings = dataclasses.replace(settings, enabled=True)
    return settings


def settings_from_args(args) -> ClassSettings:
    """load_settings for the command line's --class and --config (on the main parser, dests
    *_anywhere, or on the command's own: arguments.add_class_options)."""
    return load_settings(getattr(args, "class_mode_anywhere", False)
                         or getattr(args, "class_mode", False),
                         getattr(args, "config", None) or getattr(args, "config_anywhere", None))


def read_config(path: Path) -> ClassSettings:
    """The [class] table of `path`; ConfigError with the line for anything wrong."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, too large for a settings "
                              f"file (at most {MAX_FILE_BYTES:,}); is it the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config file is TOML, like\n"
                          f"[class]\nenabled = true") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message ends "(at line L, column C)"
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    lines = KeyLines.scan(text)
    for name in data:
        if name != "class":
            raise ConfigError(f"{path}, line {lines.of(name)}: unknown table or key {name!r}; "
                              f"the settings go in a [class] table")
    table = data.get("class", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}, line {lines.of('class')}: 'class' must be a table: "
                          f"[class] on a line of its own, then its keys")
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in KEYS:
            known = ", ".join(KEYS)
            raise ConfigError(f"{path}, line {lines.of('class', key)}: unknown key {key!r} in "
                              f"[class]; the keys are {known}")
        kind, low, high, good = KEYS[key]
        wrong_type = isinstance(value, bool) != (kind is bool) or not isinstance(value, kind)
        if wrong_type or not low <= value <= high:
            raise ConfigError(f"{path}, line {lines.of('class', key)}: class.{key} must be "
                              f"{good}, got {value!r}"[:300])
        values[key] = value
    return ClassSettings(source=path, **values)
