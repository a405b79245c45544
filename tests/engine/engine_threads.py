"""The `engine_threads` fixture, imported by the test modules that use it.

(Not a conftest.py: tests/tui imports helpers from its own conftest by name, and a second
module named conftest would shadow it depending on collection order.)

`engine_threads` runs a test module twice: once as the engine runs by default (every operation
inline on one thread) and once with every operation split into row blocks on two threads, with
the size threshold at zero so even the tests' tiny tensors are split. The gradient proofs then
cover the split code paths too.
"""
from __future__ import annotations

import pytest

from engine.fast import parallel


@pytest.fixture(scope="module", params=["inline", "split"])
def engine_threads(request):
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "split":
            patch.setattr(parallel, "MIN_WORK", 0)
            parallel.set_threads(2)
        try:
            yield request.param
        finally:
            parallel.set_threads(1)
