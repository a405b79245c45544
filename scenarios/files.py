"""Scenario files: a teacher's own task in a few lines of TOML.

    # reverse_long.toml: reversal of longer strings, with a wider model
    [scenario]
    task = "reverse"            # reverse | sort | copy | addition | tiny-lm | char-lm | pairs
    name = "reverse-long"       # optional; default: the file name without .toml
    summary = "Reverse up to 12 digits."          # optional one line
    description = "..."                           # optional paragraph
    examples = ["123456789012", "31415"]          # optional explorer inputs

    [data]                      # the task's data settings (all listed by `tui-tfs show`)
    min_len = 4
    max_len = 12

    [model]                     # any engine.maths.config.ModelConfig field but vocab_size, pad_id
    d_model = 64
    [model.breaks]              # the teaching switches: without positions, can it reverse?
    no_positional = true

    [train]                     # any engine.training.train_config.TrainConfig field
    steps = 3000

`tui-tfs show reverse > mine.toml` writes every setting of a scenario in this form: a
template to edit. Data can come from a file: `text_file = "my_book.txt"` in [data]
(char-lm: any text; copy: one phrase per line; tiny-lm: one sentence per line), read
relative to the scenario file. `task = "pairs"` learns the file's own examples:
`pairs_file = "dates.tsv"` in [data], one input<TAB>output a line (scenarios/pairs.py).

Everything is checked before a model is built. A mistake is one `ScenarioFileError` whose
message names the file, the key and the fix; the file is parsed with the standard library's
`tomllib`, which only reads data (nothing in a scenario file can run code).
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

from .base import Scenario, build_scenario
from .limits import check_limit_setting
from .overrides import ScenarioError, short, short_repr
from .tasks import FILE_TASK_NAMES, TASKS

SECTIONS = ("scenario", "data", "model", "train")
SCENARIO_KEYS = {
    "task": "which built-in task to start from",
    "name": "a short name (default: the file name)",
    "summary": "one line for `tui-tfs list`",
    "description": "a paragraph a student reads",
    "examples": "inputs the explorer offers first",
    "memory_limit_gib": "raise the 4 GiB memory limit on purpose",
}


class ScenarioFileError(ScenarioError):
    """A scenario file that cannot be used: the message starts with the file, then the key."""

    def __init__(self, path: str | Path, reason: str, key: str | None = None):
        where = reason if key is None or reason.startswith(key) else f"{key}: {reason}"
        super().__init__(f"{path}: {where}", key)
        self.path = str(path)  # the file at fault
        self.reason = reason  # what is wrong and how to fix it, without the file name


def load_scenario_file(path: str | Path) -> Scenario:
    """Read, check and build the scenario a TOML file describes."""
    path = Path(path)
    table = _read_toml(path)
    try:
        return _build(path, table)
    except ScenarioFileError:
        raise
    except ScenarioError as error:
        raise ScenarioFileError(path, error.reason, error.key) from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ScenarioFileError(path, "no such file; check the path (built-in scenarios are "
                                      f"{', '.join(TASKS)})")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioFileError(path, f"not valid TOML: {short(error, 200)}; fix the syntax there "
                                      "(strings need quotes, tables look like [model])") from None
    except RecursionError:
        raise ScenarioFileError(path, "values nested too deep to read (lists or tables inside "
                                      "each other hundreds of times); a scenario file needs at "
                                      "most two levels") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioFileError(path, f"cannot be read: {error}") from None


def _build(path: Path, table: dict[str, Any]) -> Scenario:
    for section, value in table.items():
        if section not in SECTIONS:
            raise ScenarioFileError(path, f"[{short(section)}] is not a section; a scenario file "
                                          f"has [{'], ['.join(SECTIONS)}]", short(section))
        if not isinstance(value, dict):
            raise ScenarioFileError(path, f"{section} must be a table: write [{section}] on its "
                                          f"own line and the settings below it", section)
    head = table.get("scenario", {})
    for key in head:
        if key not in SCENARIO_KEYS:
            known = ", ".join(f"{k} ({why})" for k, why in SCENARIO_KEYS.items())
            raise ScenarioFileError(path, f"scenario.{short(key)} is not a setting; [scenario] "
                                          f"takes {known}", f"scenario.{short(key)}")
    task = head.get("task")
    if task is None:
        raise ScenarioFileError(path, f"scenario.task is missing; add task = \"reverse\" (or one of "
                                      f"{', '.join(FILE_TASK_NAMES)}) under [scenario]", "scenario.task")
    for key in ("task", "name", "summary", "description"):
        if key in head and not isinstance(head[key], str):
            raise ScenarioFileError(path, f"scenario.{key} must be a string in quotes, not "
                                          f"{short_repr(head[key])}", f"scenario.{key}")
    examples = head.get("examples")
    if examples is not None and not (isinstance(examples, list) and examples):
        raise ScenarioFileError(path, 'scenario.examples must be a list of strings, like ["123", "456"]',
                                "scenario.examples")
    limit = head.get("memory_limit_gib")
    if limit is not None:
        limit = check_limit_setting(limit)
    data = dict(table.get("data", {}))
    if "text_file" in data:
        data["text_file"] = _resolve_text_file(path, data["text_file"])
    if isinstance(data.get("pairs_file"), str) and data["pairs_file"]:
        # read from the scenario file's folder; scenarios/pairs.py says if it is not there
        data["pairs_file"] = str(path.resolve().parent / Path(data["pairs_file"]).expanduser())
    return build_scenario(
        task, data=data, model=table.get("model", {}), train=table.get("train", {}),
        name=head.get("name", path.stem), summary=head.get("summary"),
        description=head.get("description"), examples=examples, source=str(path.resolve()),
        memory_limit_gib=limit)


def _resolve_text_file(path: Path, value: Any) -> str:
    """data.text_file as an absolute path that exists, read relative to the scenario file."""
    if not isinstance(value, str) or not value:
        raise ScenarioFileError(path, 'data.text_file must be a file name in quotes, like "book.txt"',
                                "data.text_file")
    try:
        text_path = Path(value).expanduser()
        if not text_path.is_absolute():
            text_path = path.resolve().parent / text_path
        found = text_path.is_file()
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL, ~nobody
        text_path, found = Path(value), False
    if not found:
        raise ScenarioFileError(path, f"data.text_file: {short(text_path, 120)} does not exist; "
                                      f"relative paths are read from the scenario file's folder",
                                "data.text_file")
    return str(text_path)


def scenario_to_toml(scenario: Scenario) -> str:
    """Every setting of a scenario as a scenario file: `tui-tfs show reverse > mine.toml`.

    Loading the result gives the same scenario, so it is a template to edit.
    """
    lines = [f"# {scenario.name}: {scenario.summary}", "", "[scenario]",
             f"task = {_toml(scenario.task.name)}", f"name = {_toml(scenario.name)}",
             f"summary = {_toml(scenario.summary)}", f"description = {_toml(scenario.description)}",
             f"examples = {_toml(list(scenario.examples))}", "", "[data]"]
    for f in dataclasses.fields(scenario.settings):
        value = getattr(scenario.settings, f.name)
        if f.name == "text_file" and not value:
            lines.append('# text_file = "my_text.txt"   # read relative to this file')
            continue
        lines.append(f"{f.name} = {_toml(value)}")
    lines += ["", "[model]"]
    config = scenario.model_config
    skipped = {"vocab_size", "pad_id", "breaks"}
    lines += [f"{f.name} = {_toml(getattr(config, f.name))}" for f in dataclasses.fields(config)
              if f.name not in skipped]
    lines += ["", "[model.breaks]"]
    lines += [f"{f.name} = {_toml(getattr(config.breaks, f.name))}"
              for f in dataclasses.fields(config.breaks)]
    lines += ["", "[train]"]
    lines += [f"{f.name} = {_toml(getattr(scenario.train_config, f.name))}"
              for f in dataclasses.fields(scenario.train_config)]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """One TOML value: strings as JSON-style basic strings (the escapes agree), None as "none"."""
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # JSON escapes U+0000-U+001F as TOML wants; TOML also forbids a raw DEL (U+007F)
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
