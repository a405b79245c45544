"""The `tui-tfs` command line: the explorer, and headless training, generation and evaluation.

    tui-tfs                              the explorer (scenario picker)
    tui-tfs explore [SCENARIO_OR_PATH]   the explorer on a scenario or a checkpoint
                    [--record KEYS | --replay KEYS [--speed N]]   a demo's keys, with timing
    tui-tfs list                         the built-in scenarios
    tui-tfs show SCENARIO_OR_PATH        its description and every setting, as a scenario file
    tui-tfs train SCENARIO_OR_PATH       train with a progress bar; checkpoints; --resume
    tui-tfs generate CHECKPOINT          continue a prompt (or translate an input)
    tui-tfs eval CHECKPOINT              held-out predictions beside the targets, and metrics
    tui-tfs lesson                       the built-in lessons
    tui-tfs lesson check [FILE]          check a lesson file (or the whole course)
    tui-tfs lesson NAME|FILE             open a lesson
    tui-tfs export CHECKPOINT --hf DIR   a GPT-2-shaped language model as a Hugging Face folder
    tui-tfs serve [SCENARIO_OR_PATH]     the app in web browsers, one app per tab
                  [--host H --port P --token [T]]   127.0.0.1:8000 by default; a token elsewhere

The explorer, lessons and serve take --class (class mode, for a machine a class shares) and
--config FILE (its settings; default ~/.config/tui-tfs/config.toml): tui_tfs/class_mode.py.

Exit codes: 0 done, 2 a usage or input error (the message says what to fix), 3 training
diverged (a loss or gradient went NaN/Inf; the checkpoint keeps its last finite weights),
130 stopped with Ctrl-C.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .arguments import build_parser

EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130


def start_explorer(source: str | None, ascii_only: bool | None = None, record: Path | None = None,
                   replay: Path | None = None, speed: float = 1.0, class_settings=None) -> int:
    """Open the Textual explorer on `source` (None: the scenario picker): a built-in name, a
    scenario file or a checkpoint. The source is opened first, so a bad one is a message on
    stderr and exit 2 (ScenarioError, CheckpointError or RunError, caught by `main`); so is a
    bad --replay file; the screen needs a terminal on stdout and stderr (it draws on stderr),
    else it says so. `record`/`replay`: a keystroke file to write or to play back."""
    from .app import draws_in_browser, run_explorer, wants_ascii
    from .keys_file import KeysFileError, read_keys

    ascii_only = wants_ascii() if ascii_only is None else ascii_only
    session = None
    if source is not None:
        from .session import Session

        session = Session.open(source, ascii=ascii_only)
    try:
        presses = read_keys(replay) if replay is not None else None
    except KeysFileError as error:
        print(f"tui-tfs explore: {error}", file=sys.stderr)
        return EXIT_USAGE
    for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        if not stream.isatty() and not draws_in_browser():
            print(f"tui-tfs explore: {name} is not a terminal (piped or redirected?); the "
                  f"explorer draws a full screen and needs one: run it without | or >, or use "
                  f"tui-tfs list, show, eval or generate for text", file=sys.stderr)
            return EXIT_USAGE
    if record is None and replay is None:
        run_explorer(source, None, ascii_only, session=session, class_settings=class_settings)
        return EXIT_OK
    from .keys_app import KeysApp
    from .keys_file import KeysWriter

    try:
        writer = KeysWriter(record) if record is not None else None
    except KeysFileError as error:
        print(f"tui-tfs explore: {error}", file=sys.stderr)
        return EXIT_USAGE
    KeysApp(source, None, ascii_only, session=session, record=writer, replay=presses,
            speed=speed, class_settings=class_settings).run()
    return EXIT_OK


# -- entry point ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (and `sys.exit`s with it when run)."""
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    # One BLAS thread unless the user chose otherwise, set before NumPy loads: these models'
    # matrices are small (d_model 32-64), so a second thread gains little (reverse: 13 -> 10 ms
    # a step) or loses (char-lm: 36 -> 50 ms), and when the other core is busy (the explorer's
    # own drawing, in-app training) OpenBLAS threads spin and a step can take 20 times longer.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    # Imported here so `tui-tfs --help` stays instant.
    from engine.training.checkpoint import CheckpointError
    from scenarios import ScenarioError

    from .class_mode import ConfigError
    from .headless import RunError

    handlers = {"list": cmd_list, "show": cmd_show, "train": cmd_train,
                "generate": cmd_generate, "eval": cmd_eval, "lesson": cmd_lesson,
                "export": cmd_export, "serve": cmd_serve, None: cmd_explore,
                "explore": cmd_explore}
    try:
        return handlers[args.command](args, console)
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which handles its own)
        print(f"tui-tfs {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ScenarioError, CheckpointError, RunError, ConfigError) as error:
        # plain print: one line however long, never wrapped by Rich, easy to grep
        print(f"tui-tfs {args.command or 'explore'}: {error}", file=sys.stderr)
        return EXIT_USAGE


# -- commands ---------------------------------------------------------------------------------------
def cmd_explore(args, console: Console) -> int:
    from .class_mode import settings_from_args

    ascii_only = args.ascii_anywhere or getattr(args, "ascii", None)
    return start_explorer(getattr(args, "scenario", None), ascii_only,
                          getattr(args, "record", None), getattr(args, "replay", None),
                          getattr(args, "speed", 1.0), settings_from_args(args))


def cmd_serve(args, console: Console) -> int:
    from .serve import serve

    return serve(args)


def cmd_list(args, console: Console) -> int:
    from scenarios import BUILTIN
    from scenarios.tasks import TASKS

    from .render import model_kind_label

    # columns by hand, not a Rich table: a table pads every row to its width (trailing spaces)
    rows = [("scenario", "model", "what it is")]
    rows += [(name, model_kind_label(TASKS[name].kind), summary) for name, summary in BUILTIN.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for i, (name, kind, summary) in enumerate(rows):
        line = f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {summary}".rstrip()
        console.print(Text(line, style="bold" if i == 0 else ""), soft_wrap=True)
    console.print("\nTrain one: tui-tfs train reverse    Your own: tui-tfs show reverse > mine.toml")
    return EXIT_OK


def cmd_lesson(args, console: Console) -> int:
    from .class_mode import settings_from_args
    from .lesson_commands import check_lessons, list_lessons, open_lesson

    what = args.what
    if not what:
        return list_lessons(console)
    if what[0] == "check":
        return check_lessons(what[1:], console)
    if len(what) == 1:
        return open_lesson(what[0], console, args.ascii_anywhere or args.ascii,
                           settings_from_args(args))
    print(f"tui-tfs lesson: expected a lesson's name, or check FILE; got {' '.join(what)[:80]}",
          file=sys.stderr)
    return EXIT_USAGE


def cmd_show(args, console: Console) -> int:
    from scenarios import load_scenario
    from scenarios.files import scenario_to_toml

    scenario = load_scenario(args.scenario)
    print(scenario_to_toml(scenario), end="")
    return EXIT_OK


def cmd_train(args, console: Console) -> int:
    from engine.fast import parallel

    before = parallel.threads()
    parallel.set_threads(args.threads)  # BLAS stays on one thread (main() set it before NumPy)
    try:
        return _train(args, console)
    finally:
        parallel.set_threads(before)


def _train(args, console: Console) -> int:
    from scenarios.limits import LIMIT_VARIABLE

    from .checkpoints import free_path
    from .headless import RunOptions, prepare, run
    from .render import model_kind_label

    if args.memory_limit is not None:  # read by scenarios.limits.memory_limit()
        before = os.environ.get(LIMIT_VARIABLE)
        os.environ[LIMIT_VARIABLE] = repr(args.memory_limit)
        try:
            args.memory_limit = None
            return _train(args, console)
        finally:
            if before is None:
                os.environ.pop(LIMIT_VARIABLE, None)
            else:
                os.environ[LIMIT_VARIABLE] = before
    name = Path(args.scenario).stem if args.scenario.endswith(".toml") else args.scenario
    out = args.out or Path("checkpoints") / f"{name}.safetensors"
    if args.out is None and not args.resume and out.exists():  # an earlier run: never replaced
        beside = free_path(out)
        console.print(f"{out} holds an earlier run, kept: this one goes to {beside} "
                      f"(--resume continues that run; --out chooses the file)")
        out = beside
    options = RunOptions(out=out, steps=args.steps, seed=args.seed, resume=args.resume,
                         eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, log=args.log,
                         shards=args.shards)
    scenario, trainer, notes = prepare(args.scenario, options)
    config = scenario.model_config
    if trainer.step_count >= scenario.train_config.steps:
        console.print(f"{out} is already trained to step {trainer.step_count} of "
                      f"{scenario.train_config.steps}: nothing to do (raise --steps to go on)")
        return EXIT_OK
    console.print(f"[bold]{scenario.name}[/]: {scenario.summary}")
    console.print(f"{model_kind_label(config.kind)}, {config.n_layers} layers, d_model "
                  f"{config.d_model}, {config.n_heads} heads, {trainer.model.num_params():,} "
                  "parameters")
    console.print(f"{scenario.train_config.steps} steps of {scenario.train_config.batch_size} "
                  f"examples, seed {config.seed}"
                  + (f", resuming at step {trainer.step_count}" if args.resume else ""))
    for note in notes:
        console.print(f"[dim]note: {note}[/]")
    result = run(scenario, trainer, options, console)
    if result.diverged is not None:
        print(_diverged_line(args, result, scenario.train_config.lr), file=sys.stderr, flush=True)
        return EXIT_DIVERGED
    if result.interrupted:
        where = (f"last checkpoint: {result.checkpoint} (step {_step_of(result.checkpoint)}); "
                 f"continue with: tui-tfs train {args.scenario} --out {out} --resume"
                 if result.checkpoint else "no checkpoint was saved yet")
        print(f"stopped at step {result.steps_done}; {where}", flush=True)  # one line, unwrapped
        return EXIT_INTERRUPTED
    console.print(f"done: step {result.steps_done} ({len(result.losses)} steps in "
                  f"{result.seconds:.1f} s); checkpoint {result.checkpoint}")
    console.print(f"next: tui-tfs eval {result.checkpoint}")
    console.print(f"      tui-tfs generate {result.checkpoint}")
    return EXIT_OK


def _diverged_line(args, result, lr: float) -> str:
    """One line: which step went non-finite, what is on disk, what to change."""
    stats = result.diverged
    kept = (f"{result.checkpoint} still holds step {result.checkpoint_step} (finite weights, "
            f"not overwritten)" if result.checkpoint_step is not None
            else f"nothing was written to {args.out or 'the checkpoint'}")
    return (f"tui-tfs train: diverged at step {stats.step}: {stats.problem}; training stopped, "
            f"{kept}; lower the learning rate (train.lr is {lr:g}) and train again")


def _step_of(path: Path) -> str:
    from engine.training.checkpoint import load_checkpoint

    try:
        return str(load_checkpoint(path).step)
    except ValueError:
        return "?"


def cmd_generate(args, console: Console) -> int:
    from scenarios import complete

    from scenarios.checkpoints import open_checkpoint

    trained = open_checkpoint(args.checkpoint)
    prompt = args.prompt if args.prompt is not None else (trained.examples[0] if trained.examples else "")
    sampling = (args.temperature, args.top_k, args.top_p) != (None, None, None)
    # an encoder-decoder's input has one right answer: greedy unless sampling is asked for
    greedy = args.greedy or (trained.layout == "pairs" and not sampling)
    temperature = 1.0 if args.temperature is None else args.temperature
    completion = complete(trained.model, trained.tokenizer, trained.layout, prompt,
                          max_tokens=args.max_tokens, temperature=temperature,
                          top_k=args.top_k, top_p=args.top_p, greedy=greedy, seed=args.seed)
    if trained.layout == "pairs":
        console.print(Text.assemble((prompt, "bold"), "  ->  ", (completion.text, "bold green")))
    else:
        gap = " " if trained.tokenizer.kind == "word" and prompt and completion.text else ""
        console.print(Text.assemble((prompt + gap, "dim"), (completion.text, "bold")))
    if args.explain:
        table = Table("#", "token", "p", "alternatives (p)", box=None, header_style="bold")
        for i, (token, p, alts) in enumerate(zip(completion.tokens, completion.probs,
                                                 completion.alternatives), 1):
            others = "  ".join(f"{t} {q:.2f}" for t, q in alts if t != token)
            table.add_row(str(i), token, f"{p:.3f}", others)
        console.print(table)
    return EXIT_OK


def cmd_eval(args, console: Console) -> int:
    from scenarios.checkpoints import open_checkpoint, scenario_of
    from .prediction_rows import marked_output, prediction_rows
    from .style import Style

    trained = open_checkpoint(args.checkpoint)
    scenario = scenario_of(trained)
    metrics = scenario.evaluate(trained.model)
    predictions = scenario.predictions(trained.model, args.n)
    ascii_only = not (console.encoding or "").lower().startswith("utf")
    word_level = scenario.tokenizer.kind == "word"
    sep = " " if word_level else ""
    teacher_forced = predictions and predictions[0].teacher_forced
    table = Table(box=None, header_style="bold", show_lines=False)
    table.add_column("#", justify="right")
    if not teacher_forced:
        table.add_column("input")
    table.add_column("target")
    table.add_column("model's next-token guesses" if teacher_forced else "model")
    table.add_column("")  # right / wrong, or how many next-token guesses were right
    style = Style(ascii=ascii_only)
    for row in prediction_rows(predictions, word_level, style):
        cells = [str(row.number)] + ([] if teacher_forced else [row.source])
        table.add_row(*cells, sep.join(row.target), marked_output(row, style, sep), row.verdict)
    plural = "s" if len(predictions) != 1 else ""
    console.print(f"[bold]{scenario.name}[/], step {trained.step}: the first {len(predictions)} distinct "
                  f"held-out example{plural}")
    if teacher_forced:
        console.print("[dim]each guess: the likeliest next token after the true text before it[/]")
    console.print(table)
    counted = ("" if scenario.layout == "stream"
               else f" ({min(len(scenario.data.held_out), scenario.task.eval_size)})")
    console.print(f"held-out{counted}: {_metrics_line(metrics)}")
    return EXIT_OK


def cmd_export(args, console: Console) -> int:
    from scenarios.checkpoints import open_checkpoint
    from scenarios.gpt2_export import export_gpt2

    trained = open_checkpoint(args.checkpoint)
    folder = export_gpt2(trained.model, trained.tokenizer, args.hf)
    console.print(f"wrote {folder}: config.json, model.safetensors, tokenizer.json "
                  f"(GPT2LMHeadModel.from_pretrained reads it; tui-tfs explore {folder} too)")
    return EXIT_OK


def _metrics_line(metrics: dict[str, float]) -> str:
    """The held-out numbers in one line of under 80 columns."""
    parts = []
    if "exact_match" in metrics:
        parts += [f"exact match {metrics['exact_match']:.1%}", f"tokens {metrics['token_accuracy']:.1%}"]
    parts += [f"loss {metrics['loss']:.4f}", f"perplexity {metrics['perplexity']:.3f}"]
    if "exact_match" not in metrics:
        parts.append(f"next token right {metrics['token_accuracy']:.1%}")
    line = ", ".join(parts)
    if "entropy" in metrics:
        line += f"\nbest possible loss (the entropy of the language): {metrics['entropy']:.4f}"
    return line

if __name__ == "__main__":
    sys.exit(main())
