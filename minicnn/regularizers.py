"""``keras.regularizers``: weight penalties added to the loss (``docs/backprop.md#l2-regularisation``).

A regularizer maps a parameter ``W`` to a penalty, a number the model adds to its loss, and
gives that penalty's gradient, which the model adds to ``W``'s gradient. Keras' definitions::

    L2(l2)(W)     = l2 * sum(W**2)                     gradient  2 * l2 * W
    L1(l1)(W)     = l1 * sum(|W|)                      gradient  l1 * sign(W)   (0 at W = 0, as TensorFlow)
    L1L2(l1, l2)  = L1(l1)(W) + L2(l2)(W)

The sum runs over every entry of ``W``: the penalty does not depend on the batch, and it is not
divided by the batch size. Conv2D and Dense take one for each parameter, Keras' way::

    Dense(128, activation="relu", kernel_regularizer=minicnn.regularizers.L2(1e-4))
    Conv2D(32, 3, kernel_regularizer="l2")      # L2(l2=0.01), as Keras reads the name

A layer's parameter ``key`` is penalised by its attribute ``<key>_regularizer``
(:meth:`minicnn.layers.base.Layer.regularizers`), and the model adds the penalties of its trainable
layers to the loss and their gradients to ``grads``
(:meth:`minicnn.models.sequential.Sequential.add_regularization_gradients`), whichever implementation
runs the layers, as Keras adds ``model.losses`` to the loss of
``fit`` and ``evaluate``. Names are those of Keras 3: ``"l2"``, ``"l1"``, ``"l1l2"`` (which is
``L1L2()``, no penalty until given one, as in Keras) and the class names.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from minicnn import missing
from minicnn.registry import REGULARIZERS

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2", "serialize"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing


class Regularizer:
    """Base class: ``regularizer(W)`` is the penalty (a float), ``regularizer.gradient(W)`` its gradient
    (an array of ``W``'s shape and dtype). A penalty of one's own subclasses it and writes both, and
    ``get_config``; a model file names it by class name, so it loads with
    ``minicnn.load_model(path, custom_objects={"MyPenalty": MyPenalty})``."""

    docs_section: ClassVar[str] = "l2-regularisation"
    """The anchor of the section of ``docs/backprop.md`` that derives the penalties."""

    def __call__(self, x: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


@REGULARIZERS.register("l2")
class L2(Regularizer):
    """``l2 * sum(W**2)``, Keras' ``L2`` (``"l2"``: ``L2(l2=0.01)``); gradient ``2 * l2 * W``.

    As weight decay: a plain SGD step with it shrinks ``W`` by the factor ``1 - 2 * lr * l2``
    before the step of the data loss (``docs/backprop.md#l2-regularisation``).
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(l2, "l2", type(self).__name__)

    def __call__(self, x: np.ndarray) -> float:
        return self.l2 * float(np.sum(np.square(x)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return x.dtype.type(2 * self.l2) * x

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


@REGULARIZERS.register("l1")
class L1(Regularizer):
    """``l1 * sum(|W|)``, Keras' ``L1`` (``"l1"``: ``L1(l1=0.01)``); gradient ``l1 * sign(W)``, 0 where
    ``W`` is exactly 0 (the subgradient TensorFlow picks)."""

    def __init__(self, l1: float = 0.01):
        self.l1 = _factor(l1, "l1", type(self).__name__)

    def __call__(self, x: np.ndarray) -> float:
        return self.l1 * float(np.sum(np.abs(x)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return x.dtype.type(self.l1) * np.sign(x)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


@REGULARIZERS.register("l1l2")
class L1L2(Regularizer):
    """``l1 * sum(|W|) + l2 * sum(W**2)``, Keras' ``L1L2``; both factors 0 by default, as in Keras."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(l1, "l1", type(self).__name__)
        self.l2 = _factor(l2, "l2", type(self).__name__)

    def __call__(self, x: np.ndarray) -> float:
        return L1(self.l1)(x) + L2(self.l2)(x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return L1(self.l1).gradient(x) + L2(self.l2).gradient(x)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
"""Keras' lower-case aliases of the classes: ``keras.regularizers.l2(1e-4)`` is ``L2(1e-4)``."""


def get(identifier, what: str = "regularizer") -> Regularizer | None:
    """A regularizer from what a layer's ``kernel_regularizer=`` takes, as Keras' ``regularizers.get``:
    None, an instance, a name (``"l2"``, ``"L2"``, ...: a new one with the defaults) or a config dict
    ``{"class_name": "L2", "config": {"l2": 0.01}}`` (as :func:`serialize` and Keras write it).
    ``what`` names the argument in errors (``"Dense: kernel_regularizer"``)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in REGULARIZERS:
            raise ValueError(f"{what}: unknown regularizer {identifier!r}; minicnn has "
                             f"{', '.join(REGULARIZERS.names())}")
        return REGULARIZERS.get(identifier)()
    if isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
        if identifier["class_name"] not in REGULARIZERS:
            raise ValueError(f"{what}: minicnn has no regularizer {identifier['class_name']!r}; it has "
                             f"{', '.join(REGULARIZERS.names())}")
        return REGULARIZERS.get(identifier["class_name"]).from_config(identifier.get("config") or {})
    hint = (" (minicnn needs the penalty's gradient as well: subclass minicnn.regularizers.Regularizer "
            "and write __call__ and gradient)" if callable(identifier) else "")
    raise TypeError(f"{what} must be None, a name ({', '.join(REGULARIZERS.names())}), a config dict "
                    f"{{'class_name': ..., 'config': ...}} or a minicnn.regularizers.Regularizer; "
                    f"got {type(identifier).__name__}{hint}")


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """``{"class_name": ..., "config": ...}`` for a layer's config (JSON, as Keras writes it), or None."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def _factor(value, name: str, owner: str) -> float:
    """``value`` as a float if it is a finite number >= 0 (Keras' rule); ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0; got {value!r}")
    return float(value)
