"""Shared fixtures: the published model, both implementations, and a short hypothesis profile."""

import numpy as np
import pytest
from hypothesis import settings

from minicnn import Sequential
from minicnn.experiments.published_model import mnist_cnn
from minicnn.implementation import IMPLEMENTATIONS, use

settings.register_profile("minicnn", max_examples=25, deadline=None)
settings.load_profile("minicnn")


def published_model(seed: int = 0) -> Sequential:
    """The Keras MNIST model minicnn reproduces (421,642 parameters)."""
    return mnist_cnn(seed=seed)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request):
    """Run a test once in the fast implementation (Numba, fused steps), once in the reference one (NumPy)."""
    with use(request.param):
        yield request.param
