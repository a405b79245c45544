"""The alternatives shown beside each generated token are the n likeliest, largest first, ties
by lower id, exactly what a stable sort of the whole distribution gives, found without sorting
all of GPT-2's 50,257 probabilities at every step."""
import numpy as np
import pytest

from engine.maths.decode import top_ids


@pytest.mark.parametrize("seed", range(4))
def test_top_ids_are_the_stable_sort_s_first(seed):
    rng = np.random.default_rng(seed)
    for _ in range(300):
        size, n = int(rng.integers(1, 80)), int(rng.integers(0, 9))
        probs = rng.random(size) if seed % 2 else rng.integers(0, 4, size) / 4  # many ties
        if rng.random() < 0.2:
            probs[rng.integers(0, size)] = np.nan
        np.testing.assert_array_equal(top_ids(probs, n), np.argsort(-probs, kind="stable")[:n])


def test_top_ids_of_a_vocabulary():
    probs = np.random.default_rng(9).dirichlet(np.ones(50_257))
    probs[[7, 70, 700]] = probs.max()  # a three-way tie at the top: lower ids first
    np.testing.assert_array_equal(top_ids(probs, 5), np.argsort(-probs, kind="stable")[:5])
    assert top_ids(probs, 5)[:3].tolist() == [7, 70, 700]
