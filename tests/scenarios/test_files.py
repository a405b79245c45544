"""Scenario files: valid ones override settings; each kind of mistake gets one message that
names the file, the key and the fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from scenarios import BUILTIN, ScenarioFileError, build_scenario, load_scenario, load_scenario_file
from scenarios.files import scenario_to_toml


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> ScenarioFileError:
    with pytest.raises(ScenarioFileError) as info:
        load_scenario_file(path)
    error = info.value
    assert str(error).startswith(f"{path}: "), "the message starts with the file"
    assert "Traceback" not in str(error)
    return error


# -- valid files -------------------------------------------------------------------------------------
def test_a_file_overrides_data_model_and_training(tmp_path):
    path = write(tmp_path, """
[scenario]
task = "reverse"
summary = "Longer strings."
examples = ["123456789012"]

[data]
min_len = 4
max_len = 12
train_size = 300
test_size = 20

[model]
d_model = 16
n_heads = 2
norm = "pre"

[model.breaks]
no_positional = true

[train]
steps = 50
lr = 0.01
clip_norm = "none"
betas = [0.8, 0.9]
""")
    s = load_scenario_file(path)
    assert s.name == "mine" and s.summary == "Longer strings." and s.examples == ("123456789012",)
    assert s.source == str(path.resolve())
    assert {len(e.source) for e in s.data.train} <= set(range(4, 13)) and len(s.data.held_out) == 20
    assert (s.model_config.d_model, s.model_config.n_heads, s.model_config.norm) == (16, 2, "pre")
    assert s.model_config.breaks.no_positional and not s.model_config.breaks.no_scaling
    assert s.model_config.max_len >= 13
    assert (s.train_config.steps, s.train_config.lr, s.train_config.clip_norm) == (50, 0.01, None)
    assert s.train_config.warmup_steps == 5, "a short run gets a warmup that fits"
    assert s.train_config.betas == (0.8, 0.9)
    assert s.description == load_scenario("reverse").description, "unset keys keep the task's"


def test_the_documented_example_file_loads(tmp_path):
    import scenarios.files

    doc = scenarios.files.__doc__
    example = doc[doc.index("    # reverse_long.toml"):doc.index("\n`tui-tfs show reverse")]
    text = "\n".join(line[4:] for line in example.splitlines())
    s = load_scenario_file(write(tmp_path, text, "reverse_long.toml"))
    assert s.name == "reverse-long" and s.model_config.d_model == 64 and s.train_config.steps == 3000
    assert s.model_config.breaks.no_positional and max(len(e.source) for e in s.data.train) == 12


def test_text_files_are_read_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "lines.txt").write_text(
        "\n".join(f"the {a} saw the {b}" for a in ("cat", "dog", "fox") for b in ("sun", "sea", "hill")),
        encoding="utf-8")
    path = write(tmp_path, '[scenario]\ntask = "tiny-lm"\n[data]\ntext_file = "texts/lines.txt"\ntest_size = 3\n')
    s = load_scenario_file(path)
    assert len(s.data.held_out) == 3 and len(s.data.train) == 6
    assert "fox" in s.tokenizer.vocab and s.entropy is None, "no known entropy for a user's text"


@pytest.mark.parametrize("name", list(BUILTIN))
def test_show_prints_a_file_that_loads_back_the_same(tmp_path, name):
    original = load_scenario(name)
    path = write(tmp_path, scenario_to_toml(original), f"{name}.toml")
    again = load_scenario_file(path)
    assert again.model_config == original.model_config
    assert again.train_config == original.train_config
    assert again.settings == original.settings
    assert (again.summary, again.description, again.examples) == (
        original.summary, original.description, original.examples)


# -- one test per kind of mistake ---------------------------------------------------------------------
def test_missing_file(tmp_path):
    error = error_of(tmp_path / "nope.toml")
    assert "no such file" in str(error) and "reverse" in str(error)


def test_not_toml(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = reverse\n'))
    assert "not valid TOML" in str(error) and "line 2" in str(error) and "quotes" in str(error)


def test_unknown_section(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[modle]\nd_model = 8\n'))
    assert error.key == "modle" and "[scenario], [data], [model], [train]" in str(error)


def test_section_that_is_not_a_table(tmp_path):
    error = error_of(write(tmp_path, 'model = 3\n[scenario]\ntask = "copy"\n'))
    assert error.key == "model" and "[model]" in str(error)


def test_missing_task(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\nname = "x"\n'))
    assert error.key == "scenario.task" and 'task = "reverse"' in str(error)


def test_unknown_task(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "translate"\n'))
    assert error.key == "scenario.task" and "reverse, sort, copy" in str(error)


def test_unknown_key_in_scenario(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\nauthor = "me"\n'))
    assert error.key == "scenario.author" and "description" in str(error)


def test_unknown_key_suggests_the_close_one(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[model]\nd_modle = 64\n'))
    assert error.key == "model.d_modle" and "did you mean 'd_model'" in str(error)


def test_unknown_data_setting_lists_the_known_ones(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "char-lm"\n[data]\nblock = 32\n'))
    assert error.key == "data.block" and "block_size" in str(error)


def test_unknown_break_switch(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[model.breaks]\nno_softmax = true\n'))
    assert error.key == "model.breaks.no_softmax" and "no_scaling" in str(error)


def test_wrong_type(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[train]\nsteps = "many"\n'))
    assert error.key == "train.steps" and "a whole number" in str(error) and "'many'" in str(error)


def test_bool_is_not_a_number(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[model]\ndropout = true\n'))
    assert error.key == "model.dropout" and "a number" in str(error)


def test_wrong_list_length(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[train]\nbetas = [0.9]\n'))
    assert error.key == "train.betas" and "[0.9, 0.98]" in str(error)


def test_none_only_where_a_setting_can_be_off(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[train]\nclip_norm = "off"\n'))
    assert error.key == "train.clip_norm" and '"none"' in str(error)


def test_impossible_model_value(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[model]\nd_model = 30\nn_heads = 4\n'))
    assert error.key == "model.d_model" and "divisible" in str(error) and "try n_heads in" in str(error)


def test_settings_that_contradict_each_other(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[train]\nsteps = 50\nwarmup_steps = 80\n'))
    assert error.key == "train.warmup_steps" and "below steps (50)" in str(error)


def test_impossible_training_value(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[train]\nlr = -1.0\n'))
    assert error.key == "train.lr" and "positive" in str(error)


def test_impossible_data_value(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "sort"\n[data]\nmin_len = 6\nmax_len = 3\n'))
    assert error.key == "data.max_len" and ">= min_len" in str(error)


def test_more_examples_than_exist(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "addition"\n[data]\ndigits = 1\n'))
    assert error.key == "data.train_size" and "100 sums" in str(error) and "lower train_size" in str(error)


def test_derived_setting(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "copy"\n[model]\nvocab_size = 100\n'))
    assert error.key == "model.vocab_size" and "tokenizer" in str(error) and "remove it" in str(error)


def test_max_len_too_short_for_the_data(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "reverse"\n[model]\nmax_len = 4\n'))
    assert error.key == "model.max_len" and "at least 9" in str(error)


def test_missing_text_file(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "char-lm"\n[data]\ntext_file = "gone.txt"\n'))
    assert error.key == "data.text_file" and "gone.txt does not exist" in str(error)
    assert "scenario file's folder" in str(error)


def test_text_file_that_is_not_text(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00\x81" * 100)
    error = error_of(write(tmp_path, '[scenario]\ntask = "char-lm"\n[data]\ntext_file = "blob.bin"\n'))
    assert error.key == "data.text_file" and "utf-8" in str(error).lower()


def test_text_too_short(tmp_path):
    (tmp_path / "short.txt").write_text("Just a line.\n", encoding="utf-8")
    error = error_of(write(tmp_path, '[scenario]\ntask = "char-lm"\n[data]\ntext_file = "short.txt"\n'))
    assert error.key == "data.block_size" and "smaller block_size" in str(error)


def test_example_the_tokenizer_cannot_read(tmp_path):
    error = error_of(write(tmp_path, '[scenario]\ntask = "reverse"\nexamples = ["12a"]\n'))
    assert error.key == "scenario.examples" and "'a'" in str(error)


SHORT_REVERSE = '[data]\nmax_len = 3\ntrain_size = 800\ntest_size = 100\n[model]\nmax_len = 4\n'


def test_an_example_longer_than_max_len_is_the_users_to_fix(tmp_path):
    path = write(tmp_path, '[scenario]\ntask = "reverse"\nexamples = ["123", "31415"]\n' + SHORT_REVERSE)
    error = error_of(path)
    assert error.key == "scenario.examples" and str(error).startswith(str(path))
    assert "'31415' needs 6 positions" in str(error) and "max_len=4" in str(error)
    assert "shorten it or raise model.max_len" in str(error)


def test_default_examples_too_long_for_max_len_become_held_out_ones(tmp_path):
    s = load_scenario(str(write(tmp_path, '[scenario]\ntask = "reverse"\n' + SHORT_REVERSE)))
    assert s.examples == tuple(e.source for e in s.data.held_out[:3]), "31415 cannot be read"
    for text in s.examples:
        assert s.batch_for(text).tgt_in.shape[1] <= s.model_config.max_len
    text = build_scenario("char-lm", data={"block_size": 8}, model={"d_model": 16, "d_ff": 32})
    assert text.examples and all(len(t) == 9 for t in text.examples), "a window of 8 reads 9 chars"
    assert load_scenario("reverse").examples[0] == "31415", "the task's own when they fit"
