"""Shared fixtures: the published model, both kernel paths, and a short hypothesis profile."""

import numpy as np
import pytest
from hypothesis import settings

from minicnn import Sequential, kernels
from minicnn.experiments.published_model import mnist_cnn

settings.register_profile("minicnn", max_examples=25, deadline=None)
settings.load_profile("minicnn")


def published_model(seed: int = 0) -> Sequential:
    """The Keras MNIST model minicnn reproduces (421,642 parameters)."""
    return mnist_cnn(seed=seed)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(params=kernels.PATHS)
def path(request):
    """Run a test once on the fast path (Numba, fused steps) and once on the reference path (NumPy)."""
    with kernels.use(request.param):
        yield request.param
