"""The token embedding's gradient is a (V, D) table with a row per token of the batch: with
GPT-2's 50,257 tokens it is 154 MB, and a trace keeps it. Only its written rows take memory;
the rest is zero pages the system never hands out."""
from pathlib import Path

import numpy as np

from engine.maths.layers import TokenEmbedding
from engine.maths.recorder import Recorder, recording


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_recorded_embedding_gradient_takes_only_its_rows():
    vocab, width = 100_000, 256  # a 100 MB table in float32
    embedding = TokenEmbedding("tok_emb", vocab, width, 1.0, 0.02, np.random.default_rng(0),
                               np.dtype(np.float32))
    ids = np.array([[5, 17, 5, 99_999]])
    embedding.forward(ids)
    d_out = np.ones((1, 4, width), dtype=np.float32)
    embedding.weight.grad.fill(0)  # in a model, the packed gradient buffer: resident already
    before = _rss_bytes()
    with recording(Recorder(long_lived=[embedding.weight.data])) as rec:  # as record_step
        embedding.backward(d_out)
    grad = rec.events[-1].tensors["grad.weight"]
    grown = _rss_bytes() - before
    assert grad.shape == (vocab, width)
    assert grad[5].tolist() == [2.0] * width and grad[17].tolist() == [1.0] * width
    assert not grad[6:17].any() and not grad[18:99_999].any()
    assert grown < grad.nbytes / 4, f"RSS grew by {grown / 1e6:.0f} MB for {grad.nbytes / 1e6:.0f} MB"
