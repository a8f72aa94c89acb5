"""Kernel initialisers, as Keras draws them, chosen by Keras' names (``kernel_initializer="he_normal"``).

Each is registered in :data:`minicnn.registry.INITIALIZERS` under its name and Keras' class name
(``"HeNormal"``, as a Keras layer's ``get_config()`` writes it).

``fan_in`` is the number of inputs of one unit (``KH*KW*C`` for Conv2D, ``D`` for Dense),
``fan_out`` the number of outputs each input feeds (``KH*KW*F``, ``U``). The distributions
are Keras'; the random numbers are NumPy's, so the values differ from Keras' draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minicnn.registry import INITIALIZERS

__all__: list[str] = []

Initializer = Callable[[tuple, int, int, np.random.Generator], np.ndarray]


@INITIALIZERS.register("GlorotUniform")
def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Keras' default kernel initialiser: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``, float32."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


@INITIALIZERS.register("HeUniform")
def he_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-l, l) with ``l = sqrt(6 / fan_in)`` (He et al. 2015, for ReLU networks), float32."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


@INITIALIZERS.register("HeNormal")
def he_normal(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """A normal with standard deviation ``sqrt(2 / fan_in)`` truncated at two deviations, as Keras.

    Keras divides the deviation by 0.8796... (the deviation of a standard normal cut at ±2),
    so the truncated values have variance ``2 / fan_in``; values beyond ±2 deviations are redrawn.
    """
    std = np.sqrt(2.0 / fan_in) / 0.87962566103423978
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return (values * std).astype(np.float32)


@INITIALIZERS.register("Zeros")
def zeros(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """All zeros (a network that starts so has every unit of a layer alike: for experiments)."""
    return np.zeros(shape, dtype=np.float32)


def check_initializer(name: str, layer: str) -> str:
    """minicnn's name of the initialiser ``name`` (or Keras' class name of it); ValueError naming the layer
    if minicnn has no such initialiser."""
    if name not in INITIALIZERS:
        raise ValueError(f"{layer}: kernel_initializer must be one of {', '.join(INITIALIZERS.names())}; "
                         f"got {name!r}")
    return INITIALIZERS.get(name).__name__


def from_keras_config(config, layer: str) -> str:
    """minicnn's name for a Keras initializer config (a dict with ``class_name``, or a name)."""
    class_name = config.get("class_name") if isinstance(config, dict) else config
    if class_name not in INITIALIZERS:
        raise ValueError(f"minicnn has no kernel_initializer {class_name!r}; it has "
                         f"{', '.join(INITIALIZERS.names())}")
    return INITIALIZERS.get(class_name).__name__
