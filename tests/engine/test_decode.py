"""Cached decoding (`infer` with a key/value cache) computes what a full forward computes,
on sequences that contain padding too: a pad key is hidden from every later query, and a
query that sees only pad keys attends to nothing, in both."""
from __future__ import annotations

import numpy as np
import pytest

from engine import DecoderOnlyConfig, EncoderDecoderConfig, build_model
from test_models_fd import randomize

PAD = 0
V, T, S = 9, 7, 5
IDS = np.array([[PAD, PAD, 3, 4, 5, 6, 7],  # left padding: the first queries see no key
                [1, 2, PAD, 3, PAD, PAD, 8],  # pads in the middle (a model may emit <pad>)
                [5, 6, 7, 8, 1, 2, 3]])  # none


def _model(kind: str, norm: str):
    cls = EncoderDecoderConfig if kind == "encoder_decoder" else DecoderOnlyConfig
    model = build_model(cls(vocab_size=V, d_model=16, n_heads=2, d_ff=24, n_layers=2,
                            max_len=T, dropout=0.0, pad_id=PAD, dtype="float64", seed=1,
                            norm=norm))
    model.eval()
    randomize(model, seed=4)
    return model


def _full_and_cached(kind: str, norm: str, chunks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Logits (B,T,V) of a full forward, and of cached decoding fed `chunks` positions at a
    time (e.g. [3, 1, 1, 1, 1]: a prompt of three, then one token per call)."""
    model = _model(kind, norm)
    src = np.array([[1, 2, 3, PAD, PAD], [4, 5, 6, 7, 8], [PAD, 2, 2, 2, 2]])
    if kind == "encoder_decoder":
        full = model.forward(src, IDS)
        memory, src_keep = model.infer_encode(src)
        step = lambda ids, cache, at: model.infer(ids, cache, at, memory, src_keep)  # noqa: E731
    else:
        full = model.forward(IDS)
        step = model.infer
    cache, parts, at = model.new_cache(), [], 0
    for size in chunks:
        parts.append(step(IDS[:, at:at + size], cache, at))
        at += size
    return full, np.concatenate(parts, axis=1)


@pytest.mark.parametrize("chunks", [[T], [1] * T, [3, 1, 2, 1]])
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("kind", ["decoder_only", "encoder_decoder"])
def test_cached_decoding_equals_full_recomputation_with_padding(kind, norm, chunks):
    full, cached = _full_and_cached(kind, norm, chunks)
    np.testing.assert_allclose(cached, full, rtol=1e-10, atol=1e-12)


def test_greedy_decoding_after_a_pad_matches_the_forward_pass():
    """Once a model emits <pad>, the next token must be the forward pass's argmax too."""
    from engine.maths.decode import generate_lm

    model = _model("decoder_only", "pre")
    prompt = [1, PAD, 3]
    generated = generate_lm(model, prompt, 4, greedy=True).ids
    ids = prompt + generated
    logits = model.forward(np.array([ids[:-1]]))[0, len(prompt) - 1:]  # (4, V)
    assert logits.argmax(axis=-1).tolist() == generated


def test_the_direct_path_gives_the_same_logits_as_row_blocks_on_two_threads(monkeypatch):
    """Small operations skip the thread pool's wrappers (generation at batch 1): the same
    products on the same rows, so the same bits as when every operation is split."""
    from engine.fast import parallel

    direct = _full_and_cached("decoder_only", "pre", [3, 1, 2, 1])
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    parallel.set_threads(2)
    try:
        split = _full_and_cached("decoder_only", "pre", [3, 1, 2, 1])
    finally:
        parallel.set_threads(1)
    assert np.array_equal(direct[0], split[0]) and np.array_equal(direct[1], split[1])


def test_decoding_writes_keys_and_values_in_place_into_a_cache_as_long_as_max_len():
    """A new position costs its own keys and values: the cache is allocated once, for max_len
    positions, and each step writes into it (no copy of the whole prefix per token)."""
    model = _model("decoder_only", "pre")
    cache = model.new_cache()
    model.infer(IDS[:, :3], cache, 0)
    kv = cache.blocks[0][0]["kv"]
    keys, values = kv.k, kv.v
    assert keys.shape[2] == model.config.max_len
    for at in range(3, T):
        model.infer(IDS[:, at:at + 1], cache, at)
    assert kv.k is keys and kv.v is values and kv.length == T
