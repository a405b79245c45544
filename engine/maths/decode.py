"""Decoding: sampling from the language model and greedy decoding for the encoder-decoder.

Both use a key/value cache: the prompt (or target prefix) is run once, then each new token
costs one position, not a recompute of the whole prefix.

Sampling turns the next-token logits z (V,) into a distribution:
    temperature  p = softmax(z / temperature)     < 1 sharpens, > 1 flattens
    top-k        keep the k most likely tokens, renormalise
    top-p        keep the smallest set whose probability reaches p (nucleus), renormalise
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .models import DecoderOnlyLM, EncoderDecoder


@dataclass
class TokenChoice:
    """One generated position."""

    token: int  # the chosen id
    prob: float  # its probability under the (temperature/top-k/top-p) distribution it came from
    alternatives: list[tuple[int, float]]  # the most likely ids and their probabilities


@dataclass
class Generation:
    ids: list[int] = field(default_factory=list)  # generated ids, prompt excluded
    steps: list[TokenChoice] = field(default_factory=list)  # one per generated id


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0,
                            top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """logits (V,) -> probabilities (V,) float64 after temperature, top-k and top-p."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use greedy=True for argmax")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p}")
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)  # -inf is safe here: the max is always kept
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        cut = int(np.searchsorted(cumulative, top_p)) + 1  # smallest prefix reaching top_p
        kept = np.zeros_like(probs)
        kept[order[:cut]] = probs[order[:cut]]
        probs = kept / kept.sum()
    return probs


def top_ids(probs: np.ndarray, n: int) -> np.ndarray:
    """The ids of the n largest probs, largest first, ties by lower id: the first n of a stable
    argsort of -probs, without sorting the whole vocabulary (50,257 ids for GPT-2, every step)."""
    if n <= 0 or n >= probs.size or np.isnan(probs).any():  # NaN: the sort puts it last
        return np.argsort(-probs, kind="stable")[:max(n, 0)]
    kth = np.partition(probs, probs.size - n)[probs.size - n]  # the n-th largest value
    candidates = np.flatnonzero(probs >= kth)  # ascending ids: every tie of the n-th is here
    return candidates[np.argsort(-probs[candidates], kind="stable")][:n]


def _choose(logits: np.ndarray, greedy: bool, temperature: float, top_k: int | None,
            top_p: float | None, rng: np.random.Generator, n_alternatives: int) -> TokenChoice:
    probs = (next_token_distribution(logits, 1.0) if greedy
             else next_token_distribution(logits, temperature, top_k, top_p))
    token = int(np.argmax(probs)) if greedy else int(rng.choice(probs.size, p=probs))
    top = top_ids(probs, n_alternatives)
    return TokenChoice(token, float(probs[token]), [(int(i), float(probs[i])) for i in top])


def generate_lm(model: DecoderOnlyLM, prompt_ids: list[int], max_new_tokens: int,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                greedy: bool = False, stop_id: int | None = None,
                rng: np.random.Generator | None = None, n_alternatives: int = 5) -> Generation:
    """Continue `prompt_ids` by up to `max_new_tokens`, stopping early at `stop_id`.

    The context is limited to max_len positions: generation stops there.
    """
    if not prompt_ids:
        raise ValueError("prompt_ids must hold at least one token (e.g. the start token)")
    rng = rng if rng is not None else np.random.default_rng()
    room = model.config.max_len - len(prompt_ids)
    if room < 0:
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens, more than max_len "
                         f"({model.config.max_len}): shorten it")
    cache = model.new_cache()
    logits = model.infer(np.asarray([prompt_ids]), cache, 0)[0, -1]  # (V,) after the prompt
    out = Generation()
    position = len(prompt_ids)
    for _ in range(max_new_tokens):
        choice = _choose(logits, greedy, temperature, top_k, top_p, rng, n_alternatives)
        out.ids.append(choice.token)
        out.steps.append(choice)
        if choice.token == stop_id or position >= model.config.max_len:
            break
        logits = model.infer(np.asarray([[choice.token]]), cache, position)[0, -1]
        position += 1
    return out


def greedy_decode(model: EncoderDecoder, src: np.ndarray, bos_id: int, eos_id: int,
                  max_len: int) -> list[list[int]]:
    """Argmax decoding of a batch of sources (B,S); each result stops before its eos."""
    src = np.asarray(src)
    memory, src_keep = model.infer_encode(src)  # encoder runs once
    batch = src.shape[0]
    cache = model.new_cache()
    max_len = min(max_len, model.config.max_len)
    tokens = np.full((batch, 1), bos_id)
    results: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for position in range(max_len):
        logits = model.infer(tokens, cache, position, memory, src_keep)[:, -1]  # (B,V)
        tokens = logits.argmax(axis=-1)[:, None]  # (B,1)
        for b in np.flatnonzero(~done):
            if tokens[b, 0] == eos_id:
                done[b] = True
            else:
                results[b].append(int(tokens[b, 0]))
        if done.all():
            break
    return results
