"""Full-size GPT-2 as the explorer opens it: a benchmark (run it by hand; no test times it).

    python tests/scenarios/measure_gpt2.py [DIR] [--runs 5] [--new-tokens 32]

DIR is a Hugging Face GPT-2 folder; when it holds no model yet, a random-weight one of GPT-2
small's shape (12 layers, width 768, 12 heads, 50,257 tokens, 124M parameters) is made there
by `transformers` (`GPT2LMHeadModel(GPT2Config())`, saved with safetensors) with a byte-level
BPE tokenizer trained by `tokenizers` on the shipped text. The default DIR is
/tmp/tui-tfs-gpt2-124m, kept for the next run.

What it measures, each in fresh processes of its own so one cannot warm or bloat another:

- the explorer's flow, `--runs` times: `Session.open(DIR)` (read the folder, build the model,
  trace the first example, as `tui-tfs explore DIR` does before the screen appears), then
  `session.trace_text(prompt)`, a 32-token prompt traced forward and backward (what typing
  it in the explorer runs), then what a reader looks at next (the gradient-norm view at the
  end of the backward, the summary of the tied head's (V, D) gradient), and the process's
  peak RSS (ru_maxrss) after tracing and after the views, and its RSS at the end.
  Wall and CPU time: the flow runs on one thread, so on a busy machine its CPU time is what
  it would take on a quiet one.
  BLAS runs on one thread and the engine unsplit, as the command line sets them.
- greedy generation at batch 1 on one thread: the engine's `complete` (the app's generation,
  with each step's odds) against `transformers`' own `generate(do_sample=False)`
  (torch.set_num_threads(1)), the same prompt ids and the same number of new tokens. Both
  processes live at once and take turns (engine, torch, torch, engine, ...); the ratio is the
  median of the per-round ratios of tokens/s.

Prints medians and every run's numbers, the load average before and after, and whether the
two sides generated the same tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/scenarios/ is two below
DEFAULT_DIR = Path("/tmp/tui-tfs-gpt2-124m")
TEXT = ROOT / "scenarios" / "data" / "pride_and_prejudice.txt"
PROMPT_TOKENS = 32  # the traced prompt: 32 inputs, each predicting the next (33 ids)
TOKENIZER_VOCAB = 4000  # BPE trained on the shipped text; the model keeps GPT-2's 50,257 rows


# -- the folder ---------------------------------------------------------------------------------
def make_folder(folder: Path) -> None:
    """A random GPT-2-small-shaped model and a BPE tokenizer, saved as the hub lays them out."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator([TEXT.read_text(encoding="utf-8")], trainer=trainer)
    torch.manual_seed(0)
    end = tokenizer.token_to_id("<|endoftext|>")
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(bos_token_id=end,
                                                                 eos_token_id=end))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))


def prompt_text(folder: Path) -> str:
    """The first PROMPT_TOKENS + 1 tokens of the shipped text, as text that encodes to them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    words = TEXT.read_text(encoding="utf-8").split()
    for n in range(PROMPT_TOKENS, 4 * PROMPT_TOKENS):  # whole words, so it re-encodes the same
        text = " ".join(words[:n])
        if len(tokenizer.encode(text).ids) >= PROMPT_TOKENS + 1:
            ids = tokenizer.encode(text).ids[:PROMPT_TOKENS + 1]
            return tokenizer.decode(ids)
    raise SystemExit("the shipped text is too short for the prompt")


# -- workers (each in a process of its own) --------------------------------------------------------
def rss_mb() -> float:
    """The process's resident set now, from /proc (what `ps -o rss` shows)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def explore_worker(folder: Path, prompt: str) -> dict:
    """The explorer's flow: open the folder (tracing its first example), trace the prompt."""
    import scenarios.gpt2_scenario as gpt2_scenario
    from tui_tfs.session import Session

    reading = {}
    open_scenario = gpt2_scenario.open_gpt2_scenario

    def timed_open(*args, **kwargs):  # the folder read into a model, apart from the first trace
        start = time.perf_counter()
        scenario = open_scenario(*args, **kwargs)
        reading["s"] = time.perf_counter() - start
        return scenario

    gpt2_scenario.open_gpt2_scenario = timed_open
    start, start_cpu = time.perf_counter(), time.process_time()
    session = Session.open(str(folder))
    opened, opened_cpu = time.perf_counter(), time.process_time()
    first_tokens = int(session.trace.batch.tgt_in.shape[1])
    session.trace_text(prompt)
    traced, traced_cpu = time.perf_counter(), time.process_time()
    traced_peak = peak_rss_mb()
    # what a reader then looks at: the backward's end, the per-layer gradient norms, and the
    # summary of the largest tensor, the tied head's (V, D) gradient
    session.goto(len(session.trace) - 1)
    session.grad_norms()
    head = session.trace.backward_at("lm_head")
    session.trace.stats(head.index, "grad.embedding")
    viewed, viewed_cpu = time.perf_counter(), time.process_time()
    return {"read_s": reading["s"], "open_s": opened - start, "trace_s": traced - opened,
            "open_cpu_s": opened_cpu - start_cpu, "trace_cpu_s": traced_cpu - opened_cpu,
            "view_s": viewed - traced, "view_cpu_s": viewed_cpu - traced_cpu,
            "traced_peak_rss_mb": traced_peak,
            "events": len(session.trace), "first_tokens": first_tokens,
            "prompt_tokens": int(session.trace.batch.tgt_in.shape[1]),
            "peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb()}


def generation_worker(side: str, folder: Path, prompt: str, new_tokens: int) -> None:
    """Serve rounds of greedy generation: each "go" line on stdin -> one JSON line of
    {seconds, tokens: the new text}; EOF ends it. One thread."""
    if side == "engine":
        from scenarios.gpt2 import open_gpt2
        from scenarios.predict import complete

        opened = open_gpt2(folder)

        def generate() -> str:
            return complete(opened.model, opened.tokenizer, "stream", prompt,
                            max_tokens=new_tokens, greedy=True).text
        prompt_ids = opened.tokenizer.encode(prompt)
    else:
        import torch
        import transformers
        from tokenizers import Tokenizer

        torch.set_num_threads(1)
        model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        prompt_ids = tokenizer.encode(prompt).ids
        ids = torch.tensor([prompt_ids])

        def generate() -> str:
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     do_sample=False, pad_token_id=0)
            return tokenizer.decode(out[0, ids.shape[1]:].tolist())
    generate()  # warm-up: first-call allocations, lazy imports
    out = sys.stdout
    sys.stdout = sys.stderr  # a library's stray print must not break the protocol
    out.write(json.dumps({"ready": True, "prompt_ids": len(prompt_ids)}) + "\n")
    out.flush()
    while sys.stdin.readline().strip() == "go":
        start, start_cpu = time.perf_counter(), time.process_time()
        tokens = generate()
        out.write(json.dumps({"seconds": time.perf_counter() - start,
                              "cpu": time.process_time() - start_cpu, "tokens": tokens}) + "\n")
        out.flush()


# -- the driver ----------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """One BLAS/OpenMP thread, as `tui-tfs` sets it before NumPy loads; our code first."""
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error",
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], env=child_env(), check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def generation_rounds(folder: Path, prompt: str, new_tokens: int, rounds: int) -> dict:
    sides = {}
    for side in ("engine", "torch"):
        sides[side] = subprocess.Popen(
            [sys.executable, __file__, "--worker", f"generate-{side}", str(folder),
             "--new-tokens", str(new_tokens), "--prompt", prompt],
            env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = {side: json.loads(p.stdout.readline()) for side, p in sides.items()}
    times: dict[str, list[float]] = {"engine": [], "torch": []}
    cpu: dict[str, list[float]] = {"engine": [], "torch": []}
    tokens: dict[str, str] = {}
    for i in range(rounds):
        for side in ("engine", "torch") if i % 2 == 0 else ("torch", "engine"):
            process = sides[side]
            process.stdin.write("go\n")
            process.stdin.flush()
            reply = json.loads(process.stdout.readline())
            times[side].append(reply["seconds"])
            cpu[side].append(reply["cpu"])
            tokens[side] = reply["tokens"]
    for process in sides.values():
        process.stdin.close()
        process.wait()
    ratios = [t / e for e, t in zip(times["engine"], times["torch"])]  # engine tok/s over torch's
    cpu_ratios = [t / e for e, t in zip(cpu["engine"], cpu["torch"])]
    return {"engine_s": times["engine"], "torch_s": times["torch"], "ratios": ratios,
            "engine_cpu_s": cpu["engine"], "torch_cpu_s": cpu["torch"], "cpu_ratios": cpu_ratios,
            "same_tokens": tokens["engine"] == tokens["torch"],
            "prompt_ids": ready["engine"]["prompt_ids"]}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=5, help="explorer flows and generation rounds")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--skip", default="", help="comma-separated: explore, generate")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prompt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "make":
        make_folder(args.folder)
        print(json.dumps({"made": str(args.folder)}))
        return
    if args.worker == "explore":
        print(json.dumps(explore_worker(args.folder, args.prompt)))
        return
    if args.worker in ("generate-engine", "generate-torch"):
        generation_worker(args.worker.split("-")[1], args.folder, args.prompt, args.new_tokens)
        return

    folder = args.folder
    if not (folder / "model.safetensors").is_file():
        print(f"making a random GPT-2-small-shaped folder in {folder} ...", flush=True)
        run_child("--worker", "make", str(folder))
    size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    prompt = prompt_text(folder)
    skip = set(args.skip.split(","))
    print(f"{folder}: {size:.0f} MB on disk; prompt: {PROMPT_TOKENS} tokens traced; "
          f"load average before: {load()}", flush=True)
    if "explore" not in skip:
        runs = []
        for i in range(args.runs):
            runs.append(run_child("--worker", "explore", str(folder), "--prompt", prompt))
            r = runs[-1]
            print(f"  explore run {i + 1}: open {r['open_s']:.2f} s (CPU {r['open_cpu_s']:.2f} s; "
                  f"reading {r['read_s']:.2f} s, then the first example's {r['first_tokens']} "
                  f"tokens traced), traced fwd+bwd {r['trace_s']:.2f} s (CPU "
                  f"{r['trace_cpu_s']:.2f} s; {r['prompt_tokens']} tokens, {r['events']} "
                  f"events), views {r['view_s']:.2f} s (CPU {r['view_cpu_s']:.2f} s); "
                  f"peak RSS after tracing "
                  f"{r['traced_peak_rss_mb']:.0f} MB, after the views {r['peak_rss_mb']:.0f} MB, "
                  f"RSS after {r['rss_mb']:.0f} MB", flush=True)
        keys = ("read_s", "open_s", "open_cpu_s", "trace_s", "trace_cpu_s", "view_s", "view_cpu_s",
                "traced_peak_rss_mb", "peak_rss_mb", "rss_mb")
        m = {k: statistics.median(r[k] for r in runs) for k in keys}
        print(f"explorer (median of {len(runs)}): open {m['open_s']:.2f} s (reading the folder "
              f"{m['read_s']:.2f} s, then tracing the first example), traced fwd+bwd of "
              f"{PROMPT_TOKENS} tokens {m['trace_s']:.2f} s; CPU time: open "
              f"{m['open_cpu_s']:.2f} s, traced fwd+bwd {m['trace_cpu_s']:.2f} s; views "
              f"{m['view_s']:.2f} s (CPU {m['view_cpu_s']:.2f} s); peak RSS after tracing "
              f"{m['traced_peak_rss_mb']:.0f} MB, "
              f"after the views {m['peak_rss_mb']:.0f} MB; RSS after {m['rss_mb']:.0f} MB",
              flush=True)
    if "generate" not in skip:
        gen = generation_rounds(folder, prompt, args.new_tokens, args.runs)
        n = args.new_tokens
        engine_rate = n / statistics.median(gen["engine_s"])
        torch_rate = n / statistics.median(gen["torch_s"])
        print(f"generation, greedy, batch 1, one thread, {gen['prompt_ids']} prompt tokens -> "
              f"{n} new ({len(gen['ratios'])} rounds): engine {engine_rate:.1f} tokens/s, "
              f"transformers generate {torch_rate:.1f} tokens/s, engine / transformers "
              f"{statistics.median(gen['ratios']):.2f}x (per round: "
              f"{', '.join(f'{r:.2f}' for r in gen['ratios'])}); in CPU time: engine "
              f"{n / statistics.median(gen['engine_cpu_s']):.1f} tokens/s, transformers "
              f"{n / statistics.median(gen['torch_cpu_s']):.1f}, "
              f"{statistics.median(gen['cpu_ratios']):.2f}x; same tokens: "
              f"{gen['same_tokens']}", flush=True)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
