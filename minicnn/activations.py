"""Activation functions as forward/backward pairs of pure functions.

Each ``*_backward(da, a)`` takes the gradient of the loss with respect to the
activation's output ``a`` and the output itself, and returns a new array ``dz``,
the gradient with respect to its input ``z`` (``docs/backprop.md#activations``).
Rows are samples: ``softmax`` works on the last axis of an array of shape (N, K).
"""

from __future__ import annotations

import numpy as np

from minicnn import missing

__all__ = ["linear", "linear_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "softmax",
           "softmax_backward", "tanh", "tanh_backward"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing


def linear(z: np.ndarray) -> np.ndarray:
    """Keras' ``"linear"`` activation, the identity: ``a = z``."""
    return z


def linear_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The identity's backward, ``dz = da``, returned as a copy so the caller's array is never shared."""
    return da.copy()


def relu(z: np.ndarray) -> np.ndarray:
    """``a = max(z, 0)``."""
    return np.maximum(z, 0)


def relu_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``dz = da`` where the unit was active (``a > 0``), else 0 (also at ``z = 0``, as Keras)."""
    return da * (a > 0)


def softmax(z: np.ndarray) -> np.ndarray:
    """``a_k = exp(z_k) / sum_j exp(z_j)`` over the last axis, shifted by the max for stability."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The softmax Jacobian-vector product: ``dz = a * (da - sum_k(da_k * a_k))``."""
    return a * (da - (da * a).sum(axis=-1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``a = 1 / (1 + exp(-z))``, as ``exp(-log(1 + exp(-z)))`` so no ``exp`` overflows for large ``|z|``."""
    return np.exp(-np.logaddexp(0, -z))


def sigmoid_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``dz = da * a * (1 - a)``: the sigmoid's derivative, written with its own output."""
    return da * a * (1 - a)


def tanh(z: np.ndarray) -> np.ndarray:
    """``a = tanh(z)``."""
    return np.tanh(z)


def tanh_backward(da: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``dz = da * (1 - a**2)``: the derivative of tanh, written with its own output."""
    return da * (1 - a * a)


ACTIVATIONS = {
    None: (linear, linear_backward),
    "linear": (linear, linear_backward),
    "relu": (relu, relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "softmax": (softmax, softmax_backward),
}


def check_activation(name: str | None, layer: str) -> str | None:
    """Return ``name`` if minicnn knows it, else raise a ValueError naming the layer."""
    if name not in ACTIVATIONS:
        known = ", ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"{layer}: unknown activation {name!r}; expected one of {known}")
    return name
