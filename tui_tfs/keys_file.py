"""Keystroke files for demos: what `tui-tfs explore --record FILE` writes and `--replay FILE`
plays back. JSON lines, so a teacher can read and trim one in an editor:

    {"tui-tfs-keys": 1}
    {"t": 0.84, "key": "n", "char": "n"}
    {"t": 2.10, "key": "question_mark", "char": "?"}

`t` is seconds since the app started; `key` is Textual's name of the key, `char` the character
it types (null for keys that type none). A bad file is one `KeysFileError` naming the line and
the fix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HEADER = {"tui-tfs-keys": 1}
MAX_KEYS = 100_000  # a demo is minutes of keys, not a log of days


class KeysFileError(ValueError):
    """A keystroke file that cannot be replayed: the message names the line and the fix."""


@dataclass(frozen=True)
class KeyPress:
    t: float  # seconds since the app started
    key: str  # Textual's key name: "n", "ctrl+t", "question_mark", "enter"
    char: str | None  # the character it types, if any


def read_keys(path: str | Path) -> list[KeyPress]:
    """The presses of a keystroke file, in time order; KeysFileError with the line and fix."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise KeysFileError(f"{path}: cannot read it ({reason}); "
                            f"record one with tui-tfs explore --record {path.name}") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if header != HEADER:
        raise KeysFileError(f"{path}:1: not a tui-tfs keystroke file (its first line must be "
                            f"{json.dumps(HEADER)}); record one with tui-tfs explore --record")
    presses: list[KeyPress] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        item = _json(line, path, number)
        t, key, char = (item.get(k) if isinstance(item, dict) else None
                        for k in ("t", "key", "char"))
        if (not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t < 1e7
                or not isinstance(key, str) or not key or len(key) > 40
                or not (char is None or isinstance(char, str) and len(char) == 1)):
            raise KeysFileError(f"{path}:{number}: expected {{\"t\": seconds, \"key\": name, "
                                f"\"char\": one character or null}}; fix or delete the line")
        if presses and t < presses[-1].t:
            raise KeysFileError(f"{path}:{number}: time {t} is before the line above's "
                                f"{presses[-1].t}; keys must be in time order")
        presses.append(KeyPress(float(t), key, char))
        if len(presses) > MAX_KEYS:
            raise KeysFileError(f"{path}:{number}: more than {MAX_KEYS:,} keys; split the demo")
    return presses


def _json(line: str, path: Path, number: int):
    try:
        return json.loads(line)
    except ValueError:
        raise KeysFileError(f"{path}:{number}: not a JSON object; each line is one key, as "
                            f"tui-tfs explore --record writes it") from None


class KeysWriter:
    """Appends presses to a keystroke file as they happen (flushed, so a crash keeps them)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as error:
            raise KeysFileError(f"{self.path}: cannot write it ({error.strerror}); choose a "
                                f"path in a folder you can write to") from None
        self._write(HEADER)

    def add(self, press: KeyPress) -> None:
        self._write({"t": round(press.t, 3), "key": press.key, "char": press.char})

    def _write(self, item: dict) -> None:
        self._file.write(json.dumps(item, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
