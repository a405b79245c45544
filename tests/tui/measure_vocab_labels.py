"""How long the explorer's vocabulary labels take on a GPT-2-sized BPE vocabulary (50,257
tokens): the first call and each call after it (a tensor view over the vocabulary asks on
every redraw). Run: PYTHONPATH=$PWD python tests/tui/measure_vocab_labels.py"""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
from tokenizers import Tokenizer, models

from scenarios.bpe import BpeTokenizer, _byte_of_char
from tui_tfs.session_views import SessionViews

chars = sorted(_byte_of_char())
rng = np.random.default_rng(0)
vocab = {c: i for i, c in enumerate(chars)}
while len(vocab) < 50_256:
    piece = "Ġ" + "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 9)))
    vocab.setdefault(piece, len(vocab))
vocab["<|endoftext|>"] = len(vocab)
tok = BpeTokenizer(Tokenizer(models.BPE(vocab, [])), None)
session = SimpleNamespace(scenario=SimpleNamespace(tokenizer=tok), ascii=False)
for n in range(4):
    start = time.perf_counter()
    labels = SessionViews.vocab_labels(session)
    print(f"call {n + 1}: {len(labels)} labels in {1000 * (time.perf_counter() - start):.1f} ms")
