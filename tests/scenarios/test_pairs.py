"""Pairs files: a scenario file's own input -> output examples (TSV or JSONL), each kind of bad
line named by its number, a seeded split, and the shipped dates example learning its task."""
from __future__ import annotations

import dataclasses
import json
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.training.trainer import Trainer
from scenarios import ScenarioFileError, load_scenario, load_scenario_file
from scenarios.files import scenario_to_toml
from scenarios import ScenarioError
from scenarios.checkpoints import open_checkpoint, save, scenario_of

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = resources.files("scenarios").joinpath("data")
WORDS = ["one two", "three four five", "six", "seven eight", "nine ten"]


def scenario_file(tmp_path: Path, pairs: str, name: str = "pairs.tsv", data: str = "") -> Path:
    """A pairs file `name` holding `pairs`, and a scenario file beside it that uses it."""
    (tmp_path / name).write_text(pairs, encoding="utf-8")
    path = tmp_path / "mine.toml"
    path.write_text(f'[scenario]\ntask = "pairs"\n[data]\npairs_file = "{name}"\n{data}',
                    encoding="utf-8")
    return path


def reversals(n: int) -> str:
    """n distinct TSV lines: a word of letters and its reversal."""
    words = ["".join("abcde"[(i // 5**k) % 5] for k in range(4)) for i in range(n)]
    return "".join(f"{w}\t{w[::-1]}\n" for w in words)


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioFileError) as info:
        load_scenario_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), "the message starts with the scenario file"
    assert "Traceback" not in message
    return message


# -- reading -------------------------------------------------------------------------------------------
def test_a_tsv_file_is_read_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "data").mkdir()
    path = scenario_file(tmp_path, reversals(40), name="data/rev.tsv",
                         data="held_out_fraction = 0.25\n")
    s = load_scenario_file(path)
    assert s.kind == "seq2seq" and s.layout == "pairs" and s.task.name == "pairs"
    assert (len(s.data.train), len(s.data.held_out)) == (30, 10)
    assert all(e.target == e.source[::-1] for e in s.data.train + s.data.held_out)
    assert s.tokenizer.kind == "char" and s.tokenizer.vocab == ("<pad>", "<s>", "</s>", *"abcde")
    assert s.model_config.max_len >= 5 and s.examples == tuple(e.source for e in s.data.held_out[:3])
    batch = s.batch_for(s.data.train[0].source)
    assert s.decode(batch.tgt_out[0]) == s.data.train[0].target, "the data's answer to its input"


def test_a_jsonl_file_with_word_tokens(tmp_path):
    lines = [json.dumps({"input": text, "output": text.upper(), "note": "ignored"}) for text in WORDS]
    path = scenario_file(tmp_path, "\n".join(lines) + "\n", name="upper.jsonl",
                         data='tokens = "word"\nheld_out_fraction = 0.2\n')
    s = load_scenario_file(path)
    assert s.tokenizer.kind == "word"
    assert {(e.source, e.target) for e in s.data.train + s.data.held_out} == {
        (w, w.upper()) for w in WORDS}
    assert s.tokenizer.vocab[:3] == ("<pad>", "<s>", "</s>") and len(s.tokenizer.vocab) == 3 + 20
    assert "FIVE" in s.tokenizer.vocab and "five" in s.tokenizer.vocab
    assert s.model_config.max_len >= 4, "words, not characters, are counted"


def test_line_endings_spaces_blank_lines_and_repeats(tmp_path):
    text = "\ufeffab\tba\r\n\r\n  cd  \t dc \r\nab\tba\nxy\tyx"  # BOM, CRLF, blank, repeat, no final \n
    s = load_scenario_file(scenario_file(tmp_path, text))
    pairs = sorted((e.source, e.target) for e in s.data.train + s.data.held_out)
    assert pairs == [("ab", "ba"), ("cd", "dc"), ("xy", "yx")]
    words = load_scenario_file(scenario_file(tmp_path, "a  b\tb   a\nc d\td c\n", data='tokens = "word"\n'))
    assert {e.source for e in words.data.train + words.data.held_out} == {"a b", "c d"}


# -- one message per kind of bad line, naming the line ----------------------------------------------------
BAD_TSV = [
    ("ab\tba\ncd dc\n", "line 2: no tab; write the input, one tab, then the output"),
    ("ab\tba\tx\n", "line 1: 2 tabs; a line holds one input and one output"),
    ("ab\tba\n\n \tdc\n", "line 3: the input is empty"),
    ("ab\tba\ncd\t  \n", "line 2: the output is empty"),
    ("ab\tba\n" + "a" * 9 + "\tb\n", "line 2: the input is 9 characters, longer than data.max_len (8); "
                                     "shorten it or raise max_len"),
    ("ab\tba\ncd\tdc\nab\tab\n", "line 3: the input 'ab' already has the output 'ba' on line 1"),
]


@pytest.mark.parametrize("text, expected", BAD_TSV)
def test_bad_tsv_lines_are_named(tmp_path, text, expected):
    message = error_of(scenario_file(tmp_path, text, data="max_len = 8\n"))
    assert "data.pairs_file: pairs.tsv: " in message and expected in message


BAD_JSONL = [
    ('{"input": "ab", "output": "ba"}\n{"input": "cd", "output": "dc"\n',
     "line 2: not valid JSON (Expecting ',' delimiter at column 31); write one object a line"),
    ('["ab", "ba"]\n', 'line 1: a JSON list where an object {"input": ..., "output": ...} belongs'),
    ('{"input": "ab", "output": "ba"}\n{"input": "cd", "answer": "dc"}\n',
     'line 2: no "output" key; each object needs "input" and "output"'),
    ('{"input": 12, "output": "ba"}\n', 'line 1: "input" must be a string in quotes, not 12'),
]


@pytest.mark.parametrize("text, expected", BAD_JSONL)
def test_bad_jsonl_lines_are_named(tmp_path, text, expected):
    message = error_of(scenario_file(tmp_path, text, name="pairs.jsonl"))
    assert "data.pairs_file: pairs.jsonl: " in message and expected in message


def test_many_bad_lines_are_listed_then_counted(tmp_path):
    text = "ok\tko\n" + "".join(f"bad{i}\n" for i in range(8))
    message = error_of(scenario_file(tmp_path, text))
    assert "line 2: no tab" in message and "line 6: no tab" in message
    assert "line 7:" not in message and "and 3 more" in message


def test_a_special_token_used_as_a_word(tmp_path):
    message = error_of(scenario_file(tmp_path, "a b\tb a\nc </s>\td c\n", data='tokens = "word"\n'))
    assert "line 2: the input uses '</s>', a special token; rename that word" in message


def test_missing_unreadable_and_not_utf8_files(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[scenario]\ntask = "pairs"\n[data]\npairs_file = "gone.tsv"\n', encoding="utf-8")
    message = error_of(path)
    assert f"{tmp_path / 'gone.tsv'} does not exist" in message and "scenario file's folder" in message
    (tmp_path / "folder.tsv").mkdir()
    path.write_text('[scenario]\ntask = "pairs"\n[data]\npairs_file = "folder.tsv"\n', encoding="utf-8")
    assert "folder.tsv cannot be read" in error_of(path)
    (tmp_path / "latin1.tsv").write_bytes("ab\tba\ncaf\u00e9\tcafe\n".encode("latin-1"))
    path.write_text('[scenario]\ntask = "pairs"\n[data]\npairs_file = "latin1.tsv"\n', encoding="utf-8")
    message = error_of(path)
    assert "latin1.tsv line 2: not UTF-8 text" in message and "save the file as UTF-8" in message


def test_settings_a_pairs_file_needs(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[scenario]\ntask = "pairs"\n', encoding="utf-8")
    assert 'pairs_file is missing; add pairs_file = "my_pairs.tsv" under [data]' in error_of(path)
    message = error_of(scenario_file(tmp_path, reversals(10), data='tokens = "bytes"\n'))
    assert 'data.tokens: tokens must be "char" or "word"' in message
    assert "too few to split" in error_of(scenario_file(tmp_path, "ab\tba\n"))
    path.write_text('[scenario]\ntask = "pair"\n', encoding="utf-8")
    assert "char-lm, pairs" in error_of(path), "the task list names pairs"


def test_pairs_is_offered_to_scenario_files_but_is_no_built_in():
    from scenarios import BUILTIN, ScenarioError

    assert "pairs" not in BUILTIN
    with pytest.raises(ScenarioError):
        load_scenario("pairs")


# -- the split ------------------------------------------------------------------------------------------
def test_the_split_is_seeded_and_disjoint(tmp_path):
    path = scenario_file(tmp_path, reversals(200))
    a, b = load_scenario_file(path), load_scenario_file(path)
    assert a.data.train == b.data.train and a.data.held_out == b.data.held_out
    assert len(a.data.held_out) == 20 and len(a.data.train) == 180
    assert not {e.source for e in a.data.train} & {e.source for e in a.data.held_out}
    other = load_scenario_file(scenario_file(tmp_path, reversals(200), data="seed = 7\n"))
    assert other.data.held_out != a.data.held_out
    assert sorted(other.data.train + other.data.held_out, key=repr) == sorted(
        a.data.train + a.data.held_out, key=repr), "the same pairs, cut elsewhere"


# -- the shipped example ---------------------------------------------------------------------------------
def test_the_example_ships_with_the_package():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in ("dates.toml", "dates.tsv"):
        assert SHIPPED.joinpath(name).is_file()
        assert any(fnmatch(f"data/{name}", p) for p in patterns["scenarios"]), name
    s = load_scenario(str(SHIPPED.joinpath("dates.toml")))
    assert (s.name, len(s.data.train), len(s.data.held_out)) == ("dates", 1800, 200)
    assert s.data.train[0].source[4] == "-" and s.data.train[0].target.split()[1][0].isupper()


def test_show_prints_a_file_that_loads_back_the_same(tmp_path):
    original = load_scenario(str(SHIPPED.joinpath("dates.toml")))
    path = tmp_path / "again.toml"
    path.write_text(scenario_to_toml(original), encoding="utf-8")
    again = load_scenario_file(path)
    assert again.settings == original.settings and again.model_config == original.model_config
    assert again.data == original.data and again.tokenizer == original.tokenizer


def test_the_shipped_example_learns_and_its_checkpoint_reopens(tmp_path):
    """250 steps, a few seconds: far above chance on held-out dates it never saw (untrained:
    about 2% of tokens right, no date whole), and the checkpoint rebuilds the scenario."""
    s = load_scenario(str(SHIPPED.joinpath("dates.toml")))
    model = s.build_model()
    before = s.evaluate(model, n=100)
    trainer = Trainer(model, dataclasses.replace(s.train_config, steps=250), s.next_batch)
    for _ in range(250):
        trainer.step()
    after = s.evaluate(model, n=100)
    assert before["exact_match"] == 0.0 and before["token_accuracy"] < 0.1
    assert after["token_accuracy"] > 0.5 and after["exact_match"] > 0.3, after

    path = save(s, trainer, tmp_path / "dates.safetensors")
    trained = open_checkpoint(path)
    again = scenario_of(trained)
    assert again.source == s.source and again.data.held_out == s.data.held_out
    reopened = again.evaluate(trained.model, n=100)
    assert reopened["exact_match"] == after["exact_match"]
    assert np.isclose(reopened["loss"], after["loss"], rtol=1e-5)


# -- any file: a scenario or one message ------------------------------------------------------------------
LINE = st.one_of(
    st.tuples(st.text(max_size=12), st.text(max_size=12)).map("\t".join),
    st.text(max_size=20),
    st.fixed_dictionaries({"input": st.one_of(st.text(max_size=8), st.integers()),
                           "output": st.text(max_size=8)}).map(json.dumps),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=12), jsonl=st.booleans(), words=st.booleans())
def test_any_file_gives_a_scenario_or_one_message(tmp_path, lines, jsonl, words):
    name = "any.jsonl" if jsonl else "any.tsv"
    path = scenario_file(tmp_path, "\n".join(lines), name=name,
                         data=f'tokens = "{"word" if words else "char"}"\nmax_len = 10\n')
    try:
        s = load_scenario_file(path)
    except ScenarioFileError as error:
        assert str(error).startswith(f"{path}: data.") and "Traceback" not in str(error)
        return
    assert s.data.train and s.data.held_out
    for e in s.data.train + s.data.held_out:
        assert s.decode(s.encode(e.target)) == e.target, "every output reads back whole"


def test_eval_refuses_a_checkpoint_whose_pairs_file_changed(tmp_path):
    """Lines added with the same characters keep the vocabulary but move the split: held-out
    numbers would count pairs the model trained on, so the checkpoint says its data changed."""
    path = scenario_file(tmp_path, reversals(100), data="[train]\nsteps = 2\nwarmup_steps = 0\n")
    s = load_scenario_file(path)
    trainer = Trainer(s.build_model(), s.train_config, s.next_batch)
    trainer.step()
    checkpoint = save(s, trainer, tmp_path / "rev.safetensors")
    assert scenario_of(open_checkpoint(checkpoint)).data == s.data, "unchanged: it reopens"
    (tmp_path / "pairs.tsv").write_text(reversals(120), encoding="utf-8")
    assert load_scenario_file(path).tokenizer == s.tokenizer
    with pytest.raises(ScenarioError, match="changed since this model was trained"):
        scenario_of(open_checkpoint(checkpoint))


def test_seed_and_file_size_are_checked_before_reading(tmp_path, monkeypatch):
    message = error_of(scenario_file(tmp_path, reversals(10), data="seed = -1\n"))
    assert "data.seed: seed must be a whole number from 0" in message
    monkeypatch.setenv("TUI_TFS_MEMORY_LIMIT_GIB", "0.0001")  # 105 KB; the file needs ~24x its size
    message = error_of(scenario_file(tmp_path, reversals(625) * 2))
    assert "to make the data" in message and "lower the pairs file's size" in message
