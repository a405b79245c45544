"""Two tiny made-up languages: English-like phrases to copy, and sentences to predict.

Both are written as templates whose slots take words from short lists, so every phrase can be
listed, counted and (for the sentences) given an exact probability. That is what lets the
`tiny-lm` scenario say how low its loss can possibly go: the entropy of its language.
"""
from __future__ import annotations

import itertools
import math

# -- phrases for `copy` ----------------------------------------------------------------------
# Slots are written {name}; every combination of words is a phrase (about ten thousand).
PHRASE_WORDS: dict[str, tuple[str, ...]] = {
    "who": ("i", "you", "we", "they"),
    "verb": ("like", "see", "want", "have", "need", "love"),
    "det": ("the", "a", "my", "your"),
    "adj": ("big", "small", "red", "blue", "old", "new", "happy"),
    "noun": ("cat", "dog", "house", "car", "book", "tree", "ball", "bird", "friend"),
}
PHRASE_TEMPLATES: tuple[str, ...] = (
    "how are you",
    "good morning",
    "thank you",
    "see you soon",
    "where is {det} {noun}",
    "where is {det} {adj} {noun}",
    "{det} {noun} is {adj}",
    "{det} {adj} {noun} is {adj}",
    "{who} {verb} {det} {noun}",
    "{who} {verb} {det} {adj} {noun}",
)


def all_phrases() -> list[str]:
    """Every phrase the templates make, in a fixed order (the seed shuffles it later)."""
    out: list[str] = []
    for template in PHRASE_TEMPLATES:
        out.extend(_fill(template, PHRASE_WORDS))
    return out


def _fill(template: str, words: dict[str, tuple[str, ...]]) -> list[str]:
    parts = template.split()
    choices = [words[p[1:-1]] if p.startswith("{") else (p,) for p in parts]
    return [" ".join(combo) for combo in itertools.product(*choices)]


# -- sentences for `tiny-lm` -------------------------------------------------------------------
# "the {animal} {verb} {prep} the {place}", each choice uniform, except that the place depends
# on the animal: cats lie on mats or beds, dogs on rugs or beds, birds only in trees. To predict
# the last word well the model must look back four words to the animal: a job for attention.
ANIMALS = ("cat", "dog", "bird")
VERBS = ("sat", "slept")
PREPOSITIONS = ("on", "under")
PLACES = {"cat": ("mat", "bed"), "dog": ("rug", "bed"), "bird": ("tree",)}


def sentence_distribution() -> list[tuple[str, float]]:
    """Every sentence of the tiny language with its probability (they sum to 1)."""
    out = []
    for animal in ANIMALS:
        for verb in VERBS:
            for prep in PREPOSITIONS:
                places = PLACES[animal]
                for place in places:
                    p = 1 / (len(ANIMALS) * len(VERBS) * len(PREPOSITIONS) * len(places))
                    out.append((f"the {animal} {verb} {prep} the {place}", p))
    return out


def entropy_per_token(distribution: list[tuple[str, float]]) -> float:
    """The lowest possible average loss (nats per predicted token) on this language.

    A model predicts every word and the final </s>; the best it can do on a sentence s is
    -log p(s) in total. Averaged the way the loss averages (over all predicted tokens):
    H = sum_s p(s) * -log p(s)  /  sum_s p(s) * (words(s) + 1).
    """
    total_nats = sum(-p * math.log(p) for _, p in distribution)
    tokens = sum(p * (len(s.split()) + 1) for s, p in distribution)
    return total_nats / tokens
