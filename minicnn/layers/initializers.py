"""Kernel initialisers, as Keras draws them."""

from __future__ import annotations

import numpy as np

__all__: list[str] = []


def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Keras' default kernel initialiser: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``, float32."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)
