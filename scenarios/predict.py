"""What a trained model makes of held-out examples, and of a prompt someone typed.

`predict` lines up held-out targets with the model's outputs, token by token, for the `eval`
command and the explorer. Tasks with one right answer are decoded greedily from the input
alone (the model never sees the target): that is the honest test. Language models have no
single right continuation, so for them each position shows the model's best guess for the
next token given the true text before it ("teacher forced"): exactly what the loss scores.

`complete` is generation, greedy or sampled (temperature, top-k, top-p), with the odds of
every choice: the encoder-decoder decodes its input, the language models continue a prompt,
sliding the context window along for long character samples. Both functions put the model in
eval mode and give it back in the mode it was in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.maths.batch import run_model
from engine.maths.param import eval_mode
from engine.maths.decode import (TokenChoice, generate_lm, greedy_decode, next_token_distribution,
                                 top_ids)

from .overrides import ScenarioError
from .tokenizers import Tokenizer, TokenizerError

if TYPE_CHECKING:  # the type, for annotations only: scenarios.base builds on this module
    from .base import Scenario


@dataclass
class Prediction:
    """One held-out example beside the model's answer."""

    source: str  # what the model was given ("31415", "12+34=", a context of text, or "")
    target: str  # the right output
    output: str  # the model's output
    target_tokens: list[str]  # the right output, token by token (for marking differences)
    output_tokens: list[str]  # the model's, token by token
    correct: bool  # output == target exactly
    teacher_forced: bool = False  # True: output[i] is the model's guess given target[:i]


def predict(scenario: Scenario, model, n: int) -> list[Prediction]:
    """The first `n` distinct held-out examples with the model's outputs (decoded in eval
    mode). A small language repeats its sentences in the held-out split: the metrics count
    every repeat, a table of examples shows each once."""
    with eval_mode(model):
        if scenario.layout == "pairs":
            return _predict_pairs(scenario, model, n)
        if scenario.task.has_answers:
            return _predict_prompted(scenario, model, n)
        return _predict_teacher_forced(scenario, model, n)


def _distinct(examples, n: int) -> list:
    """The first `n` examples whose (source, target) has not been seen before, in order."""
    seen, out = set(), []
    for example in examples:
        if (example.source, example.target) not in seen and len(out) < n:
            seen.add((example.source, example.target))
            out.append(example)
    return out


def _predict_pairs(scenario: Scenario, model, n: int) -> list[Prediction]:
    tok = scenario.tokenizer
    examples = _distinct(scenario.data.held_out, n)
    out: list[Prediction] = []
    for start in range(0, len(examples), 100):
        chunk = examples[start:start + 100]
        batch = scenario.collate([scenario.encode_example(e) for e in chunk])
        decoded = greedy_decode(model, batch.src, tok.bos_id, tok.eos_id, model.config.max_len)
        for example, ids in zip(chunk, decoded):
            out.append(_prediction(tok, example.source, example.target, ids))
    return out


def _predict_prompted(scenario: Scenario, model, n: int) -> list[Prediction]:
    tok = scenario.tokenizer
    out: list[Prediction] = []
    for example in _distinct(scenario.data.held_out, n):
        prompt = [tok.bos_id] + tok.encode(example.source)
        room = model.config.max_len - len(prompt) + 1
        generation = generate_lm(model, prompt, max_new_tokens=room, greedy=True, stop_id=tok.eos_id)
        ids = [i for i in generation.ids if i != tok.eos_id]
        out.append(_prediction(tok, example.source, example.target, ids))
    return out


def _prediction(tok: Tokenizer, source: str, target: str, ids: list[int]) -> Prediction:
    target_tokens = tok.split(target)
    output_tokens = [tok.vocab[i] for i in ids]
    return Prediction(source=source, target=target, output=tok.join(output_tokens),
                      target_tokens=target_tokens, output_tokens=output_tokens,
                      correct=output_tokens == target_tokens)


def _predict_teacher_forced(scenario: Scenario, model, n: int) -> list[Prediction]:
    tok = scenario.tokenizer
    if scenario.layout == "stream":
        # Short windows read better than whole 64-character blocks.
        batches = scenario.eval_batches(limit=n, batch_size=n)
    else:  # all of them: the first n distinct rows may lie beyond the first n
        batches = scenario.eval_batches(batch_size=100)
    out: list[Prediction] = []
    seen: set[tuple[str, str]] = set()
    for batch in batches:
        guesses = run_model(model, batch).argmax(-1)  # (B,T) best next token at each place
        for row_in, row_out, row_guess in zip(batch.tgt_in, batch.tgt_out, guesses):
            keep = row_out != tok.pad_id
            target_tokens = [tok.vocab[i] for i in row_out[keep]]
            output_tokens = [tok.vocab[i] for i in row_guess[keep]]
            context = "" if scenario.layout != "stream" else tok.decode(row_in[:1])
            target = tok.join(target_tokens)
            if (context, target) in seen:
                continue
            seen.add((context, target))
            out.append(Prediction(
                source=context, target=target, output=tok.join(output_tokens),
                target_tokens=target_tokens, output_tokens=output_tokens,
                correct=target_tokens == output_tokens, teacher_forced=True))
    return out[:n]


@dataclass
class Completion:
    """A prompt and what the model wrote after it."""

    prompt: str  # what was typed
    text: str  # the model's continuation (or the encoder-decoder's output), specials dropped
    tokens: list[str] = field(default_factory=list)  # each generated token (labels)
    probs: list[float] = field(default_factory=list)  # probability each had when chosen
    # per step, the likeliest tokens of the distribution the choice was drawn from, most likely
    # first; only those with probability > 0, i.e. left by temperature, top-k and top-p
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)


def complete(model, tokenizer: Tokenizer, layout: str, prompt: str, *, max_tokens: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             greedy: bool = False, seed: int = 0, ascii_only: bool = False) -> Completion:
    """Continue `prompt` (lm) or translate it (seq2seq), each token the likeliest (`greedy`)
    or drawn from softmax(logits / temperature) cut to top-k / top-p; raises ScenarioError on
    bad input. Token labels make whitespace visible, in ASCII with `ascii_only`."""
    try:
        prompt_ids = tokenizer.encode(prompt)
    except TokenizerError as error:
        raise ScenarioError(f"the prompt cannot be encoded: {error}") from None
    with eval_mode(model):
        steps = _generate(model, tokenizer, layout, prompt_ids, max_tokens, temperature, top_k,
                          top_p, greedy, np.random.default_rng(seed))
    ids = [s.token for s in steps]

    def label(token_id: int) -> str:
        return tokenizer.label(token_id, ascii_only=ascii_only)

    return Completion(prompt, tokenizer.decode(ids), [label(i) for i in ids],
                      [s.prob for s in steps],
                      [[(label(i), p) for i, p in s.alternatives if p > 0] for s in steps])


def _generate(model, tokenizer: Tokenizer, layout: str, prompt_ids: list[int], max_tokens: int,
              temperature, top_k, top_p, greedy: bool, rng: np.random.Generator) -> list[TokenChoice]:
    if layout == "pairs":
        if not 0 < len(prompt_ids) <= model.config.max_len:
            raise ScenarioError(f"give an input of 1 to {model.config.max_len} tokens for the "
                                f"encoder to read, e.g. 31415")
        return _sample_pairs(model, prompt_ids, min(max_tokens, model.config.max_len), temperature,
                             top_k, top_p, greedy, tokenizer.bos_id, tokenizer.eos_id, rng)
    if layout == "prompted":
        context = [tokenizer.bos_id] + prompt_ids
        if len(context) > model.config.max_len:
            raise ScenarioError(f"the prompt is {len(prompt_ids)} tokens; this model reads at most "
                                f"{model.config.max_len - 1}: shorten it")
        generation = generate_lm(model, context, min(max_tokens, model.config.max_len - len(context) + 1),
                                 temperature, top_k, top_p, greedy, tokenizer.eos_id, rng)
        return generation.steps
    return _sample_stream(model, prompt_ids or [_start_id(tokenizer)], max_tokens,
                          temperature, top_k, top_p, greedy, rng)


def _sample_pairs(model, src_ids: list[int], max_tokens: int, temperature, top_k, top_p,
                  greedy: bool, bos_id: int, eos_id: int, rng: np.random.Generator,
                  n_alternatives: int = 5) -> list[TokenChoice]:
    """Encoder-decoder generation of one source, token by token until </s>, with the odds of
    each choice. The encoder runs once and the decoder's keys and values are cached, as in
    engine.maths.decode.greedy_decode (which decodes whole batches, greedily, without the odds)."""
    memory, src_keep = model.infer_encode(np.asarray([src_ids]))  # (1,S,D), (1,S)
    cache = model.new_cache()
    token = bos_id
    steps: list[TokenChoice] = []
    for position in range(max_tokens):
        logits = model.infer(np.asarray([[token]]), cache, position, memory, src_keep)[0, -1]  # (V,)
        probs = (next_token_distribution(logits) if greedy
                 else next_token_distribution(logits, temperature, top_k, top_p))
        token = int(np.argmax(probs)) if greedy else int(rng.choice(probs.size, p=probs))
        top = top_ids(probs, n_alternatives)
        steps.append(TokenChoice(token, float(probs[token]), [(int(i), float(probs[i])) for i in top]))
        if token == eos_id:
            break
    return steps


def _sample_stream(model, ids: list[int], max_tokens: int, temperature, top_k, top_p, greedy,
                   rng: np.random.Generator) -> list:
    """Generate past max_len by sliding: keep the last half window as context and go on."""
    window = model.config.max_len
    ids = list(ids)[-window:]
    steps: list = []
    while len(steps) < max_tokens:
        context = ids[-max(1, window // 2):] if len(ids) >= window else ids
        room = min(max_tokens - len(steps), window - len(context) + 1)
        generation = generate_lm(model, context, room, temperature, top_k, top_p, greedy, None, rng)
        steps.extend(generation.steps)
        ids.extend(generation.ids)
    return steps[:max_tokens]


def _start_id(tokenizer: Tokenizer) -> int:
    """A neutral first character for an empty prompt: a newline, else a space."""
    for char in ("\n", " "):
        if char in tokenizer.vocab:
            return tokenizer.vocab.index(char)
    return tokenizer.bos_id
