"""Exercise "sgd_momentum": one step of SGD with momentum, with Keras' rule.

Read docs/backprop.md#sgd-with-nesterov-momentum, write ``MySGD.update`` below, then grade it with

    python -m minicnn.exercises grade sgd_momentum .

For each parameter with gradient g (velocity zeros at first, kept from step to step):

    velocity = momentum * velocity - lr * g
    param += velocity                          (momentum = 0: param -= lr * g)
"""

from __future__ import annotations

import numpy as np

from minicnn.optimizers import SGD


class MySGD(SGD):
    """``MySGD(learning_rate=0.01, momentum=0.0)`` with your update."""

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Update ``param`` (any shape; ``grad`` the same) in place, the velocity in ``self.state``."""
        lr, momentum = self.learning_rate, self.momentum  # noqa: F841 (yours to use)
        state = self.state.setdefault(name, {"velocity": np.zeros_like(param)})
        velocity = state["velocity"]  # noqa: F841 (update it in place, velocity[...] = ..., for the next step)
        # TODO: the two lines above; param in place (param += ..., param -= ...).
        raise NotImplementedError("write MySGD.update (docs/backprop.md#sgd-with-nesterov-momentum)")
