"""Exercise "rmsprop": one step of RMSprop, with Keras' rule.

Read docs/backprop.md#rmsprop, write ``MyRMSprop.update`` below, then grade it with

    python -m minicnn.exercises grade rmsprop .

For each parameter with gradient g (v and m zeros at first, kept from step to step):

    v = rho * v + (1 - rho) * g**2
    step = lr * g / sqrt(v + epsilon)          (epsilon INSIDE the square root, as Keras)
    m = momentum * m + step; param -= m        (momentum = 0: param -= step)
"""

from __future__ import annotations

import numpy as np

from minicnn.optimizers import RMSprop


class MyRMSprop(RMSprop):
    """``MyRMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7)`` with your update."""

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Update ``param`` in place, v and m in ``self.state`` (in place: v[...] = ...)."""
        lr, rho, momentum, epsilon = self.learning_rate, self.rho, self.momentum, self.epsilon  # noqa: F841
        state = self.state.setdefault(name, {"v": np.zeros_like(param), "m": np.zeros_like(param)})
        v, m = state["v"], state["m"]  # noqa: F841 (yours to use)
        # TODO: the three lines above, in the parameter's dtype (param -= ...).
        raise NotImplementedError("write MyRMSprop.update (docs/backprop.md#rmsprop)")
