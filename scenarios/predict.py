"""What a trained model makes of held-out examples, and of a prompt someone typed.

`predict` lines up held-out targets with the model's outputs, token by token, for the `eval`
command and the explorer. Tasks with one right answer are decoded greedily from the input
alone (the model never sees the target): that is the honest test. Language models have no
single right continuation, so for them each position shows the model's best guess for the
next token given the true text before it ("teacher forced"): exactly what the loss scores.

`complete` is generation: greedy for the encoder-decoder, sampled (temperature, top-k,
top-p) for the language models, sliding the context window along for long character samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.decode import generate_lm, greedy_decode

from .base import Prediction, forward
from .overrides import ScenarioError
from .tokenizers import Tokenizer, TokenizerError

if TYPE_CHECKING:
    from .base import Scenario


def predict(scenario: Scenario, model, n: int) -> list[Prediction]:
    """The first `n` held-out examples with the model's outputs (model left in eval mode)."""
    model.eval()
    if scenario.layout == "pairs":
        return _predict_pairs(scenario, model, n)
    if scenario.task.has_answers:
        return _predict_prompted(scenario, model, n)
    return _predict_teacher_forced(scenario, model, n)


def _predict_pairs(scenario: Scenario, model, n: int) -> list[Prediction]:
    tok = scenario.tokenizer
    examples = scenario.data.held_out[:n]
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
    for example in scenario.data.held_out[:n]:
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
    else:
        batches = scenario.eval_batches(limit=n, batch_size=100)
    out: list[Prediction] = []
    for batch in batches:
        guesses = forward(model, batch).argmax(-1)  # (B,T) best next token at each place
        for row_in, row_out, row_guess in zip(batch.tgt_in, batch.tgt_out, guesses):
            keep = row_out != tok.pad_id
            target_tokens = [tok.vocab[i] for i in row_out[keep]]
            output_tokens = [tok.vocab[i] for i in row_guess[keep]]
            context = "" if scenario.layout != "stream" else tok.decode(row_in[:1])
            out.append(Prediction(
                source=context, target=tok.join(target_tokens), output=tok.join(output_tokens),
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
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)  # most likely, per step


def complete(model, tokenizer: Tokenizer, layout: str, prompt: str, *, max_tokens: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             greedy: bool = False, seed: int = 0) -> Completion:
    """Continue `prompt` (lm) or translate it (seq2seq); raises ScenarioError on bad input."""
    model.eval()
    rng = np.random.default_rng(seed)
    try:
        prompt_ids = tokenizer.encode(prompt)
    except TokenizerError as error:
        raise ScenarioError(f"the prompt cannot be encoded: {error}") from None
    if layout == "pairs":
        if not prompt_ids:
            raise ScenarioError("give an input for the encoder to read, e.g. --prompt 31415")
        ids = greedy_decode(model, np.asarray([prompt_ids]), tokenizer.bos_id, tokenizer.eos_id,
                            min(max_tokens, model.config.max_len))[0]
        return Completion(prompt, tokenizer.decode(ids), [tokenizer.label(i) for i in ids])
    if layout == "prompted":
        context = [tokenizer.bos_id] + prompt_ids
        if len(context) > model.config.max_len:
            raise ScenarioError(f"the prompt is {len(prompt_ids)} tokens; this model reads at most "
                                f"{model.config.max_len - 1}: shorten it")
        generation = generate_lm(model, context, min(max_tokens, model.config.max_len - len(context) + 1),
                                 temperature, top_k, top_p, greedy, tokenizer.eos_id, rng)
        steps = generation.steps
    else:
        steps = _sample_stream(model, prompt_ids or [_start_id(tokenizer)], max_tokens,
                               temperature, top_k, top_p, greedy, rng)
    ids = [s.token for s in steps]
    return Completion(prompt, tokenizer.decode(ids), [tokenizer.label(i) for i in ids],
                      [s.prob for s in steps],
                      [[(tokenizer.label(i), p) for i, p in s.alternatives] for s in steps])


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
