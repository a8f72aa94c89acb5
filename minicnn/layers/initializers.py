"""Kernel initialisers, as Keras draws them, chosen by Keras' names (``kernel_initializer="he_normal"``).

``fan_in`` is the number of inputs of one unit (``KH*KW*C`` for Conv2D, ``D`` for Dense),
``fan_out`` the number of outputs each input feeds (``KH*KW*F``, ``U``). The distributions
are Keras'; the random numbers are NumPy's, so the values differ from Keras' draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__: list[str] = []

Initializer = Callable[[tuple, int, int, np.random.Generator], np.ndarray]


def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Keras' default kernel initialiser: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``, float32."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def he_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-l, l) with ``l = sqrt(6 / fan_in)`` (He et al. 2015, for ReLU networks), float32."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


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


def zeros(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """All zeros (a network that starts so has every unit of a layer alike: for experiments)."""
    return np.zeros(shape, dtype=np.float32)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform, "he_normal": he_normal, "he_uniform": he_uniform, "zeros": zeros,
}
KERAS_CLASSES = {"GlorotUniform": "glorot_uniform", "HeNormal": "he_normal", "HeUniform": "he_uniform",
                 "Zeros": "zeros"}
"""Keras' initializer class names (as ``get_config()`` writes them) by minicnn's name."""


def check_initializer(name: str, layer: str) -> str:
    """``name`` if minicnn has that initialiser, else a ValueError naming the layer and the choices."""
    if name not in INITIALIZERS:
        raise ValueError(f"{layer}: kernel_initializer must be one of {sorted(INITIALIZERS)}; got {name!r}")
    return name


def from_keras_config(config, layer: str) -> str:
    """minicnn's name for a Keras initializer config (a dict with ``class_name``, or a name)."""
    class_name = config.get("class_name") if isinstance(config, dict) else config
    name = KERAS_CLASSES.get(class_name, class_name)
    if name not in INITIALIZERS:
        raise ValueError(f"minicnn has no kernel_initializer {class_name!r}; it has {sorted(INITIALIZERS)}")
    return name
