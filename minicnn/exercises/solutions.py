"""Reference solutions of exercises whose piece minicnn's own code does not provide as such.

:class:`L2` is the solution of the exercise ``l2``: Keras' ``L2`` regulariser, the penalty
``l2 * sum(kernel**2)`` added to the loss and its gradient ``2 * l2 * kernel`` added to the
kernel's gradient. Written here so the exercise stands on its own. :func:`seed_model` is the
capstone's: the published MNIST CNN with its ReLUs as layers of their own, as the capstone builds it.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, ReLU
from minicnn.models import Sequential


class L2:
    """``L2(l2=0.01)``: ``L2(l2)(kernel) = l2 * sum(kernel**2)`` (a float),
    ``gradient(kernel) = 2 * l2 * kernel``.

    kernel: any shape, e.g. (D, U) for Dense or (KH, KW, C, F) for Conv2D; the gradient has its shape.
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = float(l2)

    def __call__(self, kernel: np.ndarray) -> float:
        return self.l2 * float(np.sum(kernel * kernel))

    def gradient(self, kernel: np.ndarray) -> np.ndarray:
        return 2 * self.l2 * kernel


def seed_model(seed: int) -> Sequential:
    """The published MNIST CNN (:func:`minicnn.experiments.published_model.mnist_cnn`), ReLU as layers."""
    return Sequential([
        Input((28, 28, 1)),
        Conv2D(32, 3, padding="same", seed=seed), ReLU(), MaxPooling2D(2), Dropout(0.25, seed=seed + 1),
        Conv2D(64, 3, padding="same", seed=seed + 2), ReLU(), MaxPooling2D(2), Dropout(0.25, seed=seed + 3),
        Flatten(), Dense(128, seed=seed + 4), ReLU(), Dropout(0.5, seed=seed + 5),
        Dense(10, activation="softmax", seed=seed + 6),
    ])
