"""Shared fixtures: the published model, and a hypothesis profile that keeps runs short."""

import numpy as np
import pytest
from hypothesis import settings

from minicnn import Sequential
from minicnn.models import mnist_cnn

settings.register_profile("minicnn", max_examples=25, deadline=None)
settings.load_profile("minicnn")


def published_model(seed: int = 0) -> Sequential:
    """The Keras MNIST model minicnn reproduces (421,642 parameters)."""
    return mnist_cnn(seed=seed)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
