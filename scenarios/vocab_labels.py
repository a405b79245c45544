"""Every token's label of a vocabulary, computed once per tokenizer and glyph set.

A view over the vocabulary (the logits, the output softmax, the embedding table) labels its
axis with every token. GPT-2's 50,257 byte-level pieces take most of a second to turn into
labels, so the table is made once per tokenizer (and once more for ASCII) and shared:

    labels = vocab_labels(tokenizer, ascii_only=False)    # tuple, id -> label
"""
from __future__ import annotations

import weakref

# id(tokenizer) -> (a weak reference to it, {ascii_only: labels}); an entry goes with its
# tokenizer, and a reused id is told apart by the reference
_TABLES: dict[int, tuple[weakref.ref, dict[bool, tuple[str, ...]]]] = {}


def vocab_labels(tokenizer, ascii_only: bool = False) -> tuple[str, ...]:
    """`tokenizer.label(i)` for every id of its vocabulary, computed on the first call."""
    key = id(tokenizer)
    entry = _TABLES.get(key)
    if entry is None or entry[0]() is not tokenizer:
        entry = (weakref.ref(tokenizer, lambda _, key=key: _forget(key)), {})
        _TABLES[key] = entry
    tables = entry[1]
    if ascii_only not in tables:
        tables[ascii_only] = tuple(tokenizer.label(i, ascii_only=ascii_only)
                                   for i in range(len(tokenizer.vocab)))
    return tables[ascii_only]


def _forget(key: int) -> None:
    """The tokenizer of `key` is gone: drop its table unless a new one took the id."""
    entry = _TABLES.get(key)
    if entry is not None and entry[0]() is None:
        del _TABLES[key]
