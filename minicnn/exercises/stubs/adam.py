"""Exercise "adam": one step of the Adam optimizer, with Keras' rule.

Read docs/backprop.md#adam, write ``MyAdam.update`` below, then grade it with

    python -m minicnn.exercises grade adam .

At step t (self.iterations + 1, from 1), for each parameter with gradient g:

    m = beta_1 * m + (1 - beta_1) * g            (first moment, zeros at first)
    v = beta_2 * v + (1 - beta_2) * g * g        (second moment, zeros at first)
    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)      (the bias correction, folded)
    param -= alpha * m / (sqrt(v) + epsilon)
"""

from __future__ import annotations

import numpy as np

from minicnn.optimizers import Adam


class MyAdam(Adam):
    """``MyAdam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`` with your update."""

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Update ``param`` (any shape; ``grad`` the same) in place, and its moments in ``self.state``."""
        t = self.iterations + 1  # noqa: F841 (yours to use)
        state = self.state.setdefault(name, {"m": np.zeros_like(param), "v": np.zeros_like(param)})
        m, v = state["m"], state["v"]  # noqa: F841 (update them in place, m[...] = ..., for the next step)
        # TODO: the four lines above, with self.learning_rate, self.beta_1, self.beta_2, self.epsilon.
        raise NotImplementedError("write MyAdam.update (docs/backprop.md#adam)")
