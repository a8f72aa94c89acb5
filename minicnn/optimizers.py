"""Optimizers: they own the update rule and its state, and nothing else.

``apply_gradients`` takes ``(name, param, grad)`` triples and updates each
``param`` in place. State (Adam's moments, SGD's velocity) is keyed by the
parameter's name (``"conv2d/kernel"``), created on first sight and kept across
steps, so one optimizer serves a whole model and never resets between batches.
All arithmetic stays in the parameters' dtype (float32 in training).

As in Keras, the learning-rate schedules are here too, ``minicnn.optimizers.schedules`` (the
module :mod:`minicnn.schedules`), also for ``from minicnn.optimizers.schedules import ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import ClassVar

import numpy as np

from minicnn import missing, schedules
from minicnn.kernels import compiled, pair
from minicnn.registry import OPTIMIZERS
from minicnn.validation import check_positive

__all__ = ["SGD", "Adam", "Optimizer", "RMSprop", "adam_update", "adam_update_numba", "adam_update_reference",
           "get", "schedules"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing

# keras.optimizers.schedules as a module path too, as os.path is: `from minicnn.optimizers.schedules import`
sys.modules[f"{__name__}.schedules"] = schedules

Triple = tuple[str, np.ndarray, np.ndarray]


class Optimizer:
    """Base class: counts steps, keeps per-parameter state and the learning rate (or its schedule)."""

    docs_section: ClassVar[str]
    """The anchor of the section of ``docs/backprop.md`` that derives the update rule (``"adam"``)."""

    def __init__(self, learning_rate: float | schedules.LearningRateSchedule):
        self._schedule: schedules.LearningRateSchedule | None = None
        if isinstance(learning_rate, dict):  # as get_config writes a schedule
            learning_rate = schedules.deserialize(learning_rate)
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self._schedule = learning_rate
        else:
            self.learning_rate = learning_rate
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def learning_rate(self) -> float:
        """The rate of the next step: the schedule's value at ``iterations``, if there is a schedule."""
        return self._schedule(self.iterations) if self._schedule else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise TypeError(f"{type(self).__name__}: the learning rate follows {self._schedule!r}; "
                            "it cannot also be set (callbacks that set it need a float learning_rate)")
        self._learning_rate = check_positive(value, f"{type(self).__name__}: learning_rate")

    def apply_gradients(self, params_and_grads: Iterable[Triple]) -> None:
        """Update every parameter in place from its gradient; one step."""
        for name, param, grad in params_and_grads:
            if grad.shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: gradient of {name} has shape {grad.shape}; "
                    f"expected {param.shape}"
                )
            self.update(name, param, grad)
        self.iterations += 1

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """One step of the rule on ``param``, in place, at :attr:`learning_rate` (fixed within a step:
        a schedule reads ``iterations``, which ``apply_gradients`` counts up after all updates)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        lr = schedules.serialize(self._schedule) if self._schedule else self._learning_rate
        return {"learning_rate": lr}


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum, Keras' rule.

    ``velocity = momentum * velocity - lr * grad``, then ``param += velocity``, or with
    ``nesterov=True`` ``param += momentum * velocity - lr * grad`` (the step looks ahead
    along the new velocity; ``docs/backprop.md#sgd-with-nesterov-momentum``).
    """

    docs_section = "sgd-with-nesterov-momentum"

    def __init__(self, learning_rate: float | schedules.LearningRateSchedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False):
        super().__init__(learning_rate)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1); got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        lr = param.dtype.type(self.learning_rate)
        if self.momentum == 0.0:
            param -= lr * grad
            return
        state = self.state.setdefault(name, {"velocity": np.zeros_like(param)})
        velocity = state["velocity"]
        velocity *= param.dtype.type(self.momentum)
        velocity -= lr * grad
        if self.nesterov:
            param += velocity * param.dtype.type(self.momentum) - grad * lr
        else:
            param += velocity

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "nesterov": self.nesterov, **super().get_config()}


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop with Keras' rule and defaults (``docs/backprop.md#rmsprop``). Per parameter::

        v = rho * v + (1 - rho) * grad**2
        g = rho * g + (1 - rho) * grad                  (centered only)
        step = lr * grad / sqrt(v - g**2 + epsilon)     (sqrt(v + epsilon) if not centered)
        m = momentum * m + step; param -= m             (param -= step if momentum == 0)

    ``epsilon`` sits inside the square root, as in Keras (Adam adds it outside).
    """

    docs_section = "rmsprop"

    def __init__(self, learning_rate: float | schedules.LearningRateSchedule = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False):
        super().__init__(learning_rate)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"RMSprop: rho must be in [0, 1); got {rho!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"RMSprop: momentum must be in [0, 1); got {momentum!r}")
        self.rho, self.momentum = float(rho), float(momentum)
        self.epsilon = check_positive(epsilon, "RMSprop: epsilon")
        self.centered = bool(centered)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        f = param.dtype.type
        slots = ["velocity"] + ["momentum"] * (self.momentum > 0) + ["average_gradient"] * self.centered
        state = self.state.setdefault(name, {slot: np.zeros_like(param) for slot in slots})
        rho = f(self.rho)
        v = state["velocity"]
        v *= rho
        v += f(1 - self.rho) * (grad * grad)
        if self.centered:
            g = state["average_gradient"]
            g *= rho
            g += f(1 - self.rho) * grad
            denominator = v - g * g + f(self.epsilon)
        else:
            denominator = v + f(self.epsilon)
        step = f(self.learning_rate) * grad / np.sqrt(denominator)
        if self.momentum > 0:
            m = state["momentum"]
            m *= f(self.momentum)
            m += step
            step = m
        param -= step

    def get_config(self) -> dict:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered, **super().get_config()}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam with Keras' update rule (``docs/backprop.md#adam``).

    At step ``t`` (from 1), per parameter::

        m = m + (1 - beta_1) * (grad - m)
        v = v + (1 - beta_2) * (grad**2 - v)
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        param -= alpha * m / (sqrt(v) + epsilon)

    ``epsilon`` is the paper's "epsilon hat": it is added after the bias
    correction has been folded into ``alpha``, as Keras and TensorFlow do.
    """

    docs_section = "adam"

    def __init__(self, learning_rate: float | schedules.LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7):
        super().__init__(learning_rate)
        for label, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Adam: {label} must be in [0, 1); got {beta!r}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = check_positive(epsilon, "Adam: epsilon")

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        state = self.state.setdefault(name, {"m": np.zeros_like(param), "v": np.zeros_like(param)})
        adam_update(param, grad, state["m"], state["v"], alpha, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self) -> dict:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                **super().get_config()}


# --------------------------------------------------------------------------- Adam's update, twice


def adam_update_reference(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                          alpha: float, beta_1: float, beta_2: float, epsilon: float) -> None:
    """One Keras Adam step, in place on ``param``, ``m`` and ``v`` (all of one shape).

    ``alpha`` already holds the bias correction: ``lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``.
    """
    f = param.dtype.type
    m += (grad - m) * f(1 - beta_1)
    v += (grad * grad - v) * f(1 - beta_2)
    param -= f(alpha) * m / (np.sqrt(v) + f(epsilon))


@compiled()  # no zero-division checks, so the loop vectorizes
def _adam_kernel(param, grad, m, v, alpha, one_minus_beta_1, one_minus_beta_2,
                 epsilon):  # pragma: no cover - compiled
    # Serial on purpose: waking the thread pool costs more than the update of one tensor.
    for i in range(param.shape[0]):
        g = grad[i]
        m[i] += (g - m[i]) * one_minus_beta_1
        v[i] += (g * g - v[i]) * one_minus_beta_2
        param[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)


def adam_update_numba(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                      alpha: float, beta_1: float, beta_2: float, epsilon: float) -> None:
    """Numba version of :func:`adam_update_reference`: one pass instead of a dozen array temporaries."""
    f = param.dtype.type
    _adam_kernel(param.reshape(-1), np.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1),
                 f(alpha), f(1 - beta_1), f(1 - beta_2), f(epsilon))


adam_update = pair(adam_update_reference, adam_update_numba)


def get(optimizer: str | Optimizer) -> Optimizer:
    """An optimizer from an instance, or a new one from a name: Keras' (``"adam"``, ``"sgd"``,
    ``"rmsprop"``, in any case, as Keras reads them) or the class name."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name ({', '.join(OPTIMIZERS.names())}) or a "
                        f"minicnn.optimizers.Optimizer; got {type(optimizer).__name__}")
    return OPTIMIZERS.get(optimizer.lower() if optimizer.lower() in OPTIMIZERS else optimizer)()
