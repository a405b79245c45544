"""The headless `tui-tfs` commands: help, list, show, train (seeded, resumable, Ctrl-C safe),
generate and eval, and their error messages."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from engine.training.checkpoint import load_checkpoint, save_checkpoint
from scenarios import load_scenario, load_scenario_file
from tui_tfs.cli import main
from scenarios.checkpoints import save
from tui_tfs.headless import META_TRAIN, RunOptions, prepare

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["explore", "list", "show", "train", "generate", "eval", "export"]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def losses(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(row["step"], row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Small checkpoints of a sequence task and a language model, trained once for the module."""
    folder = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for name, steps in (("copy", 300), ("tiny-lm", 150)):
        out[name] = folder / f"{name}.safetensors"
        assert main(["train", name, "--steps", str(steps), "--out", str(out[name])]) == 0
    return out


# -- help and listing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [None] + COMMANDS)
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        main(([command] if command else []) + ["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tui-tfs") and "--help" in out
    if command is None:
        assert all(c in out for c in COMMANDS)
    if command == "train":
        assert all(opt in out for opt in ("--steps", "--seed", "--out", "--resume"))
    if command == "generate":
        assert all(opt in out for opt in ("--prompt", "--temperature", "--top-k", "--top-p", "--max-tokens"))


def test_list_names_every_scenario_with_a_line(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("reverse", "copy", "sort", "tiny-lm", "char-lm", "addition"):
        assert f"\n{name} " in out
    assert "31415 -> 51413" in out


def test_show_prints_a_scenario_file_to_start_from(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "show", "sort")
    assert code == 0 and out.startswith("# sort:")
    path = tmp_path / "sort.toml"
    path.write_text(out, encoding="utf-8")
    assert load_scenario_file(path).train_config == load_scenario("sort").train_config


# -- training -------------------------------------------------------------------------------------------
def test_same_seed_same_losses_other_seed_other_losses(capsys, tmp_path):
    runs = {}
    for label, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        code, out, _ = run_cli(capsys, "train", "tiny-lm", "--steps", "30", "--seed", seed,
                               "--out", str(tmp_path / f"{label}.safetensors"),
                               "--log", str(tmp_path / f"{label}.csv"))
        assert code == 0 and "done: step 30" in out
        runs[label] = losses(tmp_path / f"{label}.csv")
    assert len(runs["a"]) == 30
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_engine_threads_change_the_speed_not_the_numbers(capsys, tmp_path, monkeypatch):
    """char-lm's products and GELU are big enough to be split over two threads; the losses and
    weights must be the same bits as with one thread (blocks never split a sum)."""
    from engine.fast import parallel

    parts_seen = []
    real_row_blocks = parallel.row_blocks
    monkeypatch.setattr(parallel, "row_blocks",
                        lambda n, parts, *align: parts_seen.append(parts)
                        or real_row_blocks(n, parts, *align))
    runs = {}
    for threads in ("1", "2"):
        code, out, _ = run_cli(capsys, "train", "char-lm", "--steps", "3", "--threads", threads,
                               "--out", str(tmp_path / f"{threads}.safetensors"),
                               "--log", str(tmp_path / f"{threads}.csv"))
        assert code == 0 and "done: step 3" in out
        runs[threads] = losses(tmp_path / f"{threads}.csv")
    assert 2 in parts_seen, "nothing was split: the test would prove nothing"
    assert parallel.threads() == 1  # the command puts the engine back as it found it
    assert runs["1"] == runs["2"]
    one, two = load_file(tmp_path / "1.safetensors"), load_file(tmp_path / "2.safetensors")
    assert all(np.array_equal(one[k], two[k]) for k in one)


def test_shards_run_side_by_side_and_the_numbers_follow_the_shards_not_the_threads(
        capsys, tmp_path):
    """--shards 2 gives the same bits on one thread and on two; next to one shard the losses
    agree to rounding (the same maths, summed in another order) but not bit for bit."""
    runs = {}
    for shards, threads in (("1", "2"), ("2", "1"), ("2", "2")):
        label = f"s{shards}t{threads}"
        code, out, _ = run_cli(capsys, "train", "reverse", "--steps", "3", "--shards", shards,
                               "--threads", threads, "--out", str(tmp_path / f"{label}.safetensors"),
                               "--log", str(tmp_path / f"{label}.csv"))
        assert code == 0 and "done: step 3" in out
        runs[label] = losses(tmp_path / f"{label}.csv")
    assert runs["s2t1"] == runs["s2t2"]
    assert runs["s2t1"] != runs["s1t2"]
    np.testing.assert_allclose([float(loss) for _, loss in runs["s2t1"]],
                               [float(loss) for _, loss in runs["s1t2"]], rtol=1e-4)
    stored = json.loads(load_checkpoint(tmp_path / "s2t2.safetensors").metadata[META_TRAIN])
    assert stored["shards"] == 2  # a resumed run keeps its shards


def test_resume_continues_exactly_where_it_stopped(capsys, tmp_path):
    straight, halves = tmp_path / "straight.safetensors", tmp_path / "halves.safetensors"
    assert run_cli(capsys, "train", "copy", "--steps", "40", "--seed", "1", "--out", str(straight))[0] == 0
    # the first half of the same 40-step run, saved as `train` saves it
    scenario, trainer, _ = prepare("copy", RunOptions(out=halves, steps=40, seed=1))
    for _ in range(20):
        trainer.step()
    save(scenario, trainer, halves)
    # no --steps: a resumed run keeps its own plan (40 steps, its schedule), not the default
    code, out, _ = run_cli(capsys, "train", "copy", "--out", str(halves), "--resume")
    assert code == 0 and "resuming at step 20" in out and "seed 1" in out and "40 steps" in out
    a, b = load_file(straight), load_file(halves)
    assert sorted(a) == sorted(b)
    assert all(np.array_equal(a[k], b[k]) for k in a), "resumed weights equal uninterrupted ones"
    assert load_checkpoint(halves).step == 40


def test_resume_refuses_another_scenarios_checkpoint(capsys, trained):
    code, out, err = run_cli(capsys, "train", "sort", "--out", str(trained["copy"]), "--resume")
    assert code == 2 and "trained on 'copy', not 'sort'" in err and "Traceback" not in err


def test_resume_needs_a_checkpoint(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "copy", "--out", str(tmp_path / "none.safetensors"), "--resume")
    assert code == 2 and "no checkpoint at" in err


def test_a_bad_scenario_file_is_one_message_and_no_model(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\ntask = "copy"\n[model]\nn_heads = 3\n', encoding="utf-8")
    out_path = tmp_path / "never.safetensors"
    code, out, err = run_cli(capsys, "train", str(bad), "--out", str(out_path))
    assert code == 2 and out == ""
    assert err.strip().count("\n") <= 1, "one message"
    assert str(bad) in err.replace("\n", "") and "model.d_model" in err and "try n_heads in" in err
    assert not out_path.exists()


def test_unknown_scenario_name(capsys):
    code, _, err = run_cli(capsys, "train", "revrese")
    assert code == 2 and "no scenario named 'revrese'" in err and "reverse" in err


# -- using a trained model ------------------------------------------------------------------------------
def test_eval_shows_predictions_beside_targets(capsys, trained):
    code, out, _ = run_cli(capsys, "eval", str(trained["copy"]), "--n", "4")
    assert code == 0
    assert "the first 4 distinct held-out examples" in out and "input" in out and "target" in out
    assert "exact match" in out and "tokens" in out
    held = load_scenario("copy").data.held_out
    assert held[0].source in out


def test_eval_of_a_language_model_shows_next_token_guesses(capsys, trained):
    code, out, _ = run_cli(capsys, "eval", str(trained["tiny-lm"]), "--n", "3")
    assert code == 0 and "next-token guesses" in out and "perplexity" in out
    assert "entropy" in out and "</s>" in out


def test_generate_continues_a_prompt(capsys, trained):
    code, out, _ = run_cli(capsys, "generate", str(trained["tiny-lm"]), "--prompt", "the cat sat",
                           "--temperature", "0.7", "--top-k", "3", "--explain")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("the cat sat ") and len(first.split()) > 3
    assert "alternatives" in out


def test_generate_is_seeded(capsys, trained):
    texts = [run_cli(capsys, "generate", str(trained["tiny-lm"]), "--prompt", "the", "--seed", "5")[1]
             for _ in range(2)]
    assert texts[0] == texts[1]


def test_generate_with_an_encoder_decoder_decodes_the_input(capsys, trained):
    code, out, _ = run_cli(capsys, "generate", str(trained["copy"]), "--prompt", "how are you")
    assert code == 0 and out.startswith("how are you  ->  ")


def test_generate_with_an_encoder_decoder_samples_when_asked(capsys, trained):
    def run(*options):
        code, out, _ = run_cli(capsys, "generate", str(trained["copy"]), "--prompt", "how are you",
                               *options)
        assert code == 0
        return out

    assert run() == run("--greedy"), "greedy unless sampling is asked for"
    hot = [run("--temperature", "3", "--top-k", "4", "--seed", str(seed), "--explain")
           for seed in (1, 1, 2, 3)]
    assert hot[0] == hot[1] and len(set(hot[1:])) > 1, "seeded, and the seed matters"
    assert "alternatives" in hot[0] and "</s>" in hot[0]


def test_generate_names_a_token_the_model_does_not_know(capsys, trained):
    code, _, err = run_cli(capsys, "generate", str(trained["tiny-lm"]), "--prompt", "the zebra")
    assert code == 2 and "'zebra' is not in the vocabulary" in err


def test_checkpoints_without_scenario_metadata_are_refused(capsys, tmp_path):
    model = load_scenario("tiny-lm").build_model()
    path = save_checkpoint(tmp_path / "bare.safetensors", model)
    code, _, err = run_cli(capsys, "eval", str(path))
    assert code == 2 and "no scenario metadata" in err


@pytest.mark.parametrize("command", ["generate", "eval"])
def test_missing_checkpoint_says_which_command_makes_one(capsys, tmp_path, command):
    path = tmp_path / "nope.safetensors"
    code, _, err = run_cli(capsys, command, str(path))
    assert code == 2 and "no such file" in err
    assert f"tui-tfs train SCENARIO --out {path}" in err
    assert "save_checkpoint" not in err  # an engine function: nothing a user can type
    assert len(err.strip().splitlines()) == 1


def test_bad_option_values_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "copy", "--steps", "0"])
    assert info.value.code == 2 and "must be from 1 to" in capsys.readouterr().err


# -- Ctrl-C ------------------------------------------------------------------------------------------------
def start_training(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "run.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_tfs.cli", "train", "copy", "--steps", "100000",
         "--checkpoint-every", "10", "--eval-every", "10", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not out.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
        time.sleep(0.1)
    return proc, out


@pytest.mark.timeout(240)
def test_ctrl_c_stops_saves_and_can_be_resumed(tmp_path):
    proc, out = start_training(tmp_path)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("stopped at step") and str(out) in last and "--resume" in last
    checkpoint = load_checkpoint(out)
    assert checkpoint.step is not None and checkpoint.step >= 10
    assert f"stopped at step {checkpoint.step};" in last, "the saved step is the stopped step"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    scenario, trainer, _ = prepare("copy", RunOptions(out=out, steps=100000, resume=True))
    assert trainer.step_count == checkpoint.step


@pytest.mark.timeout(240)
def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    proc, out = start_training(tmp_path)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopped at step" in stdout
    assert load_checkpoint(out).step >= 10, "the last complete checkpoint is intact"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_train_without_out_keeps_an_earlier_runs_checkpoint_and_writes_beside_it(
        capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "checkpoints" / "reverse.safetensors"
    code, _, _ = run_cli(capsys, "train", "reverse", "--steps", "2")
    assert code == 0 and first.exists()
    before = first.read_bytes()
    code, out, _ = run_cli(capsys, "train", "reverse", "--steps", "3")
    assert code == 0
    assert ("checkpoints/reverse.safetensors holds an earlier run, kept: this one goes to "
            "checkpoints/reverse-2.safetensors") in " ".join(out.split())
    assert first.read_bytes() == before
    assert load_file(tmp_path / "checkpoints" / "reverse-2.safetensors")
    code, out, _ = run_cli(capsys, "train", "reverse", "--steps", "4", "--resume")
    assert code == 0 and "resuming at step 2" in out and "beside" not in out
    assert first.read_bytes() != before  # --resume continues the earlier run, in its file
