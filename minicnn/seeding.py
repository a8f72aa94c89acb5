"""Where minicnn's randomness comes from: one global generator, or a seed you pass.

Weight initialisation, dropout masks and the shuffling in ``fit`` each draw
from their own ``numpy.random.Generator``. A layer or call given ``seed=`` uses
``default_rng(seed)``; without one it draws a fresh seed from the global
generator, which :func:`set_random_seed` resets (like
``keras.utils.set_random_seed``). So one ``set_random_seed(0)`` at the top of a
script makes the whole run repeatable.
"""

from __future__ import annotations

import numpy as np

_global_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Reset the global generator so every later unseeded draw is repeatable."""
    global _global_rng
    _global_rng = np.random.default_rng(seed)


def make_rng(seed: int | None = None) -> np.random.Generator:
    """A generator seeded by ``seed``, or by the global generator when ``seed`` is None."""
    if seed is None:
        seed = int(_global_rng.integers(2**63))
    return np.random.default_rng(seed)
