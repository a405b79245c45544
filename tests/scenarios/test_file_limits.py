"""Scenario files that ask for the impossible, the enormous or the unprintable: each is one
short message naming the key, before any data or model exists."""
from __future__ import annotations

import resource
import tomllib
from pathlib import Path

import pytest

from scenarios import ScenarioFileError, load_scenario_file
from scenarios.files import scenario_to_toml
from scenarios.limits import LIMIT_VARIABLE, data_bytes, memory_limit
from scenarios.settings import DigitSettings

HEAD = '[scenario]\ntask = "reverse"\n'


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioFileError) as info:
        load_scenario_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("table, key", [
    ("[data]\nseed = -1", "data.seed"),
    ("[model]\nseed = -1", "model.seed"),
    ("[train]\nseed = -1", "train.seed"),
    ("[data]\nseed = 18446744073709551616", "data.seed"),
])
def test_negative_or_huge_seeds_are_refused(tmp_path, table, key):
    message = error_of(tmp_path, HEAD + table)
    assert key in message and "seed" in message


@pytest.mark.parametrize("table", [
    "[train]\nlr = inf", "[train]\nlr = nan", "[train]\nweight_decay = inf", "[train]\neps = inf",
    "[train]\nmin_lr = nan", "[train]\nclip_norm = inf", "[train]\nbetas = [0.9, nan]",
    "[model]\ninit_std = inf", "[model]\nln_eps = inf", "[model]\ndropout = nan",
    "[data]\nmax_len = 4\nmin_len = 2\n[train]\nlabel_smoothing = nan",
])
def test_non_finite_settings_are_refused(tmp_path, table):
    message = error_of(tmp_path, HEAD + table)
    assert "inf" in message or "nan" in message


def test_deep_nesting_is_a_message_not_a_recursion_error(tmp_path):
    message = error_of(tmp_path, HEAD + "[data]\nx = " + "[" * 1000 + "]" * 1000 + "\n")
    assert "nested too deep" in message


@pytest.mark.parametrize("table, words", [
    ("[data]\nmax_len = 100000", "to make the data"),
    ("[data]\nmax_len = 30000", "to make the data"),
    ("[data]\nmax_len = 20\ntrain_size = 1000000000000", "to make the data"),
    ("[model]\nd_model = 1000000000000\nn_heads = 1", "to train"),
    ("[model]\nd_ff = 1000000000000", "to train"),
    ("[model]\nn_layers = 1000000000000", "to train"),
    ("[model]\nmax_len = 1000000000", "to train"),
    ("[train]\nbatch_size = 1000000000", "to train"),
])
def test_settings_past_the_memory_limit_are_refused_with_the_estimate(tmp_path, table, words):
    before = peak_rss_mb()
    message = error_of(tmp_path, HEAD + table)
    assert f"need about" in message and words in message and "limit of 4.0 GiB" in message
    assert "memory_limit_gib" in message  # how to raise it on purpose
    assert peak_rss_mb() - before < 200  # refused before the memory was touched


def test_the_limit_can_be_raised_on_purpose(tmp_path, monkeypatch):
    text = HEAD + "[data]\nmax_len = 30\ntrain_size = 500\n[model]\nd_model = 16\nn_heads = 2\n"
    tight = text.replace(HEAD, HEAD + "memory_limit_gib = 0.001\n")
    assert "limit of 1.0 MiB" in error_of(tmp_path, tight)
    path = tmp_path / "raised.toml"
    path.write_text(text.replace(HEAD, HEAD + "memory_limit_gib = 64\n"), encoding="utf-8")
    assert load_scenario_file(path).settings.max_len == 30
    monkeypatch.setenv(LIMIT_VARIABLE, "0.001")
    assert memory_limit() == int(0.001 * 1024**3)
    assert "limit of 1.0 MiB" in error_of(tmp_path, text)


def test_the_data_estimate_grows_with_what_is_asked():
    small, big = DigitSettings(max_len=8), DigitSettings(max_len=30000)
    assert data_bytes(small) < 64 * 1024**2 < 4 * 1024**3 < data_bytes(big)


def test_a_huge_key_or_value_is_quoted_short(tmp_path):
    key = error_of(tmp_path, HEAD + "[model]\n" + "k" * 1_000_000 + " = 1\n")
    value = error_of(tmp_path, HEAD + '[model]\nactivation = "' + "v" * 1_000_000 + '"\n')
    listed = error_of(tmp_path, HEAD + "[model]\nd_model = [" + "1, " * 100_000 + "1]\n")
    section = error_of(tmp_path, HEAD + "[" + "s" * 1_000_000 + "]\n")
    for message in (key, value, listed, section):
        assert len(message) < 600, message[:200]


def test_the_divisor_hint_is_instant(tmp_path):
    message = error_of(tmp_path, HEAD + "[model]\nd_model = 9223372036854775807\nn_heads = 2\n")
    assert "try n_heads in [1, 7, 49]" in message


@pytest.mark.parametrize("text", ["a\x7fb", "tab\there", "bell\x07", "nul\x00", "quote\"back\\"])
def test_show_writes_valid_toml_for_control_characters(tmp_path, text):
    path = tmp_path / "mine.toml"
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 or c in '"\\' else c
                      for c in text)
    path.write_text(HEAD + f'description = "{escaped}"\n', encoding="utf-8")
    scenario = load_scenario_file(path)
    shown = tmp_path / "shown.toml"
    shown.write_text(scenario_to_toml(scenario), encoding="utf-8")
    assert tomllib.loads(shown.read_text(encoding="utf-8"))["scenario"]["description"] == text
    assert load_scenario_file(shown).description == text
