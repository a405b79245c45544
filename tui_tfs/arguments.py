"""The `tui-tfs` command line's arguments: the parser, and the checks of each value, so a value
no run could finish (a temperature that overflows, a billion tokens) is refused with one line
before anything starts."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

MAX_TOKENS = 10_000  # --max-tokens bound: char-lm generation is not bounded by max_len
TEMPERATURES = (0.01, 100.0)  # --temperature bounds: past them logits / T overflow or are noise


# -- arguments --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-tfs", description="Explore a transformer written from scratch in NumPy: step "
        "through every forward and backward operation, or train and query it from the shell.",
        epilog="Built-in scenarios: reverse, copy, sort, tiny-lm, char-lm, addition "
        "(tui-tfs list). Lessons: tui-tfs lesson. Without a command, the explorer opens.")
    parser.add_argument("--ascii", action="store_true", default=None, dest="ascii_anywhere",
                        help="ASCII glyphs only, for the explorer opened without a command "
                             "(default: automatic, from the terminal)")
    add_class_options(parser, "_anywhere")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    explore = commands.add_parser(
        "explore", help="open the explorer on a scenario or a checkpoint",
        description="Open the Textual explorer on a built-in scenario, a scenario file or a "
        "checkpoint (it traces the trained model; Ctrl+T trains on from its step).")
    explore.add_argument("scenario", nargs="?", metavar="SCENARIO_OR_PATH",
                         help="built-in name, scenario file (.toml), checkpoint "
                              "(.safetensors) or a Hugging Face GPT-2 folder (config.json, "
                              "model.safetensors, tokenizer.json) (default: the picker)")
    explore.add_argument("--ascii", action="store_true", default=None,
                         help="ASCII glyphs only (default: automatic, from the terminal)")
    add_class_options(explore)
    explore.add_argument("--record", type=Path, metavar="KEYS",
                         help="write every key pressed, with its time, to this file (a demo)")
    explore.add_argument("--replay", type=Path, metavar="KEYS",
                         help="play back a file written by --record; any key stops it")
    explore.add_argument("--speed", type=_speed, default=1.0, metavar="N",
                         help="replay N times faster (default 1; 0.1 to 100)")

    commands.add_parser("list", help="list the built-in scenarios",
                        description="The built-in scenarios, each with one line on what it is.")

    show = commands.add_parser(
        "show", help="describe a scenario and print all its settings",
        description="Print a scenario's description, then every setting as a scenario file "
        "(TOML). Save it to start your own: tui-tfs show reverse > mine.toml")
    show.add_argument("scenario", metavar="SCENARIO_OR_PATH", help="built-in name or scenario file")

    train = commands.add_parser(
        "train", help="train a scenario's model with a progress bar",
        description="Train a scenario's model headless. A checkpoint (weights, training state, "
        "scenario) is saved every --checkpoint-every steps and at the end; --resume continues "
        "from it. Ctrl-C stops after the current step and saves; a second Ctrl-C stops at once "
        "and keeps the last checkpoint.")
    train.add_argument("scenario", metavar="SCENARIO_OR_PATH", help="built-in name or scenario file")
    train.add_argument("--steps", type=_positive_int, help="total training steps (default: the scenario's)")
    train.add_argument("--seed", type=_non_negative_int,
                       help="seeds the model's initialisation and the batches (default 0; a resumed "
                            "run keeps its own); same seed, same losses")
    train.add_argument("--out", type=Path,
                       help="checkpoint file (default: checkpoints/NAME.safetensors, or "
                            "NAME-2.safetensors beside it if that holds an earlier run)")
    train.add_argument("--resume", action="store_true", help="continue training the checkpoint at --out")
    train.add_argument("--eval-every", type=_positive_int, metavar="N",
                       help="measure on the held-out split every N steps (default: a tenth of the run)")
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                       help="save a checkpoint every N steps (default: as --eval-every)")
    train.add_argument("--log", type=Path, metavar="CSV", help="also write every step's numbers to a CSV file")
    train.add_argument("--memory-limit", type=_gib, metavar="GIB",
                       help="refuse settings estimated to need more memory than this many GiB "
                            "(default 4; raise it on purpose for a big model)")
    train.add_argument("--threads", type=_whole_in(1, 64), default=None, metavar="N",
                       help="threads the engine splits large operations (and shards) across "
                            "(default: one per core, at most 8; 1 turns splitting off)")
    train.add_argument("--shards", type=_positive_int, default=None, metavar="N",
                       help="split each batch into N shards whose forward and backward run side "
                            "by side, one per thread (default: the scenario's, 1). Pays off for "
                            "models much larger than the built-in ones; the losses depend on N, "
                            "not on --threads")

    generate = commands.add_parser(
        "generate", help="continue a prompt with a trained model",
        description="Language models continue the prompt by sampling; encoder-decoder models "
        "decode the input greedily unless --temperature, --top-k or --top-p asks for sampling.")
    generate.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a file saved by tui-tfs train")
    generate.add_argument("--prompt", help="text to start from (default: the scenario's first example)")
    generate.add_argument("--temperature", type=_temperature,
                          help="below 1 plays safe, above 1 takes wilder guesses (default 1; "
                               f"{TEMPERATURES[0]} to {TEMPERATURES[1]:g})")
    generate.add_argument("--top-k", type=_positive_int, help="sample only among the k likeliest tokens")
    generate.add_argument("--top-p", type=_probability,
                          help="sample only among the likeliest tokens whose probabilities reach p")
    generate.add_argument("--greedy", action="store_true", help="always take the likeliest token")
    generate.add_argument("--max-tokens", type=_whole_in(1, MAX_TOKENS), default=200,
                          help=f"at most this many (default 200, at most {MAX_TOKENS:,})")
    generate.add_argument("--seed", type=_non_negative_int, default=0, help="seeds the sampling (default 0)")
    generate.add_argument("--explain", action="store_true",
                          help="show each token's probability and the alternatives")

    lesson = commands.add_parser(
        "lesson", help="open a lesson, list the built-in ones, or check a lesson file",
        description="Lessons walk the explorer step by step and ask questions whose answers "
        "are computed from the model shown. Without arguments: the built-in course; with a "
        "lesson's name or file: the lesson screen. "
        "`tui-tfs lesson check FILE` checks a lesson file without opening the explorer: every "
        "problem with its line and the fix (exit 0: good, 2: problems); without FILE it checks "
        "the whole built-in course.",
        epilog="Write your own: copy a built-in lesson (tui-tfs lesson shows where they are), "
        "edit it, then tui-tfs lesson check mine.toml")
    lesson.add_argument("what", nargs="*", metavar="NAME|FILE | check FILE",
                        help="a lesson to open, or `check FILE` to check one")
    lesson.add_argument("--ascii", action="store_true", default=None,
                        help="ASCII glyphs only (default: automatic, from the terminal)")
    add_class_options(lesson)

    evaluate = commands.add_parser(
        "eval", help="held-out predictions beside the targets, and metrics",
        description="Measure a trained model on its scenario's held-out split and show the "
        "first N predictions next to the right answers, wrong tokens marked.")
    evaluate.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a file saved by tui-tfs train")
    evaluate.add_argument("--n", type=_whole_in(1, MAX_ROWS), default=10,
                          help=f"predictions to show (default 10, at most {MAX_ROWS:,})")
    serve = commands.add_parser(
        "serve", help="serve the explorer to web browsers (one app per browser tab)",
        description="Serve the app to web browsers: each browser tab that opens the page gets "
        "its own tui-tfs, as in a terminal. Binds 127.0.0.1 (this machine only) unless --host "
        "says otherwise; any other address needs an access token, which the page asks for "
        "before anything else. Ctrl+C stops the server and its apps.",
        epilog="From another machine without exposing the port: ssh -L 8000:127.0.0.1:8000 "
        "HOST, then open http://localhost:8000")
    serve.add_argument("scenario", nargs="?", metavar="SCENARIO_OR_PATH",
                       help="what each tab opens, as for tui-tfs explore (default: the picker)")
    serve.add_argument("--lesson", metavar="NAME|FILE",
                       help="each tab opens this lesson instead (as tui-tfs lesson NAME)")
    serve.add_argument("--ascii", action="store_true", default=None,
                       help="ASCII glyphs only in the browser (default: Unicode)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                            "0.0.0.0 for every network, with a token)")
    serve.add_argument("--port", type=_whole_in(1, 65535), default=8000,
                       help="port to listen on (default 8000)")
    serve.add_argument("--token", nargs="?", const=True, default=None, metavar="TOKEN",
                       help="the access token the page asks for (at least 12 characters; "
                            "--token alone generates one and prints it; the environment "
                            "variable TUI_TFS_TOKEN keeps it out of the process list). "
                            "Required unless the host is a loopback address")
    serve.add_argument("--max-tabs", type=_whole_in(1, 1000), default=64, metavar="N",
                       help="at most N tabs (app processes) at once; the next is refused until "
                            "one closes (default 64; each takes about 80 MB)")
    add_class_options(serve)

    export = commands.add_parser(
        "export", help="write a trained language model as a Hugging Face GPT-2 folder",
        description="Write a decoder-only checkpoint whose model is GPT-2-shaped (norm \"pre\", "
        "activation \"gelu\", positional \"learned\", tie_embeddings true, scale_embedding "
        "false) as config.json, model.safetensors and tokenizer.json, which transformers' "
        "GPT2LMHeadModel and tokenizers read.")
    export.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a file saved by tui-tfs train")
    export.add_argument("--hf", type=Path, required=True, metavar="DIR",
                        help="the folder to write (new, or empty)")
    return parser


def add_class_options(parser: argparse.ArgumentParser, suffix: str = "") -> None:
    """--class and --config (dests class_mode/config, + `suffix` on the main parser, whose
    values a command's own defaults would otherwise overwrite)."""
    parser.add_argument("--class", action="store_true", dest="class_mode" + suffix,
                        help="class mode, for a machine a class shares: training runs at a "
                             "lower priority than keys and pauses past a memory limit per "
                             "session (settings: --config)")
    parser.add_argument("--config", type=Path, metavar="FILE", dest="config" + suffix,
                        help="settings file (TOML, a [class] table; default "
                             "~/.config/tui-tfs/config.toml, else /etc/xdg/tui-tfs/config.toml)")


MAX_ROWS = 10_000  # eval --n bound
MAX_INT_FLAG = 10**9  # --steps, --eval-every ...: past this a run would not end in a lifetime


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text[:40]!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if not 1 <= value <= MAX_INT_FLAG:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_INT_FLAG:,}, got {text[:40]}")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**63-1, got {text[:40]}")
    return value


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text[:40]}")
    return value


def _temperature(text: str) -> float:
    value = _real(text)
    low, high = TEMPERATURES
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"must be from {low} to {high:g}, got {text[:40]} (for always the likeliest token, "
            f"use --greedy)")
    return value


def _whole_in(low: int, high: int):
    """An argparse type: a whole number from `low` to `high`, else one line saying so."""
    def check(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {text[:40]}")
        return value
    return check


def _speed(text: str) -> float:
    value = _real(text)
    if not 0.1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be from 0.1 to 100, got {text[:40]}")
    return value


def _gib(text: str) -> float:
    value = _real(text)
    if not 0 < value <= 1024**2:
        raise argparse.ArgumentTypeError(f"must be a number of GiB above 0, got {text[:40]}")
    return value


def _probability(text: str) -> float:
    value = _real(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text[:40]}")
    return value
