"""The reference solution of the capstone, whose piece minicnn's own code does not provide as such.

:func:`seed_model` is the published MNIST CNN with its ReLUs as layers of their own, as the
capstone builds it.
"""

from __future__ import annotations

from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, ReLU
from minicnn.models import Sequential


def seed_model(seed: int) -> Sequential:
    """The published MNIST CNN (:func:`minicnn.experiments.published_model.mnist_cnn`), ReLU as layers."""
    return Sequential([
        Input((28, 28, 1)),
        Conv2D(32, 3, padding="same", seed=seed), ReLU(), MaxPooling2D(2), Dropout(0.25, seed=seed + 1),
        Conv2D(64, 3, padding="same", seed=seed + 2), ReLU(), MaxPooling2D(2), Dropout(0.25, seed=seed + 3),
        Flatten(), Dense(128, seed=seed + 4), ReLU(), Dropout(0.5, seed=seed + 5),
        Dense(10, activation="softmax", seed=seed + 6),
    ])
