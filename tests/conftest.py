"""Shared fixtures: the published model, and a hypothesis profile that keeps runs short."""

import numpy as np
import pytest
from hypothesis import settings

from minicnn import Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D, Sequential

settings.register_profile("minicnn", max_examples=25, deadline=None)
settings.load_profile("minicnn")


def published_model(seed: int = 0) -> Sequential:
    """The Keras MNIST model minicnn reproduces (421,642 parameters)."""
    return Sequential([
        Input((28, 28, 1)),
        Conv2D(32, 3, padding="same", activation="relu", seed=seed),
        MaxPool2D(2),
        Dropout(0.25, seed=seed + 1),
        Conv2D(64, 3, padding="same", activation="relu", seed=seed + 2),
        MaxPool2D(2),
        Dropout(0.25, seed=seed + 3),
        Flatten(),
        Dense(128, activation="relu", seed=seed + 4),
        Dropout(0.5, seed=seed + 5),
        Dense(10, activation="softmax", seed=seed + 6),
    ])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
