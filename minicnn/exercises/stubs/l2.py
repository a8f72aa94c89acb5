"""Exercise "l2": L2 regularisation, the penalty and its gradient, as Keras' ``L2``.

Read docs/backprop.md#l2-regularisation, write ``MyL2`` below, then grade it with

    python -m minicnn.exercises grade l2 .

A kernel W (any shape: (D, U) for Dense, (KH, KW, C, F) for Conv2D) regularised with L2 adds

    penalty = l2 * sum(W**2)                    (Keras' L2: no 1/2 in front)

to the loss. So the training step adds d penalty / dW to the kernel's gradient before the
optimizer's update: weights are pulled towards 0, the more the larger they are ("weight decay").
"""

from __future__ import annotations

import numpy as np


class MyL2:
    """``MyL2(l2=0.01)``: ``MyL2(l2)(kernel)`` is the penalty, ``.gradient(kernel)`` its gradient."""

    def __init__(self, l2: float = 0.01):
        self.l2 = float(l2)

    def __call__(self, kernel: np.ndarray) -> float:
        """The penalty, a Python float."""
        # TODO: l2 times the sum of the squared weights.
        raise NotImplementedError("write MyL2.__call__")

    def gradient(self, kernel: np.ndarray) -> np.ndarray:
        """d penalty / d kernel, an array of the kernel's shape."""
        # TODO: differentiate the penalty weight by weight.
        raise NotImplementedError("write MyL2.gradient")
