"""The planner (:mod:`minicnn.fused.planner`) covers the zoo's convolutions with fused steps, and a model
trained through them ends where the reference implementation ends."""

import numpy as np
import pytest

from minicnn import SGD, Conv2D, fused
from minicnn.fused.composite import FusedStep
from minicnn.layers import Dense, Dropout, Flatten
from minicnn.layers.activation import Activation

from .zoo import ZOO

ON_THEIR_OWN = (Dense, Flatten, Dropout, Activation)
"""Layers that may run as steps of their own: a BLAS product or one pass each, with nothing to fuse."""


@pytest.mark.parametrize("name", ZOO)
def test_the_zoo_plans_into_fused_steps(name):
    model = ZOO[name](0)
    steps = fused.plan(model.layers)
    covered = [layer for step in steps for layer in step.layers]
    assert covered == model.layers  # every layer once, in order
    alone = [step for step in steps if not isinstance(step, FusedStep)]
    assert all(isinstance(step, ON_THEIR_OWN) for step in alone), fused.describe(steps)
    assert not any(isinstance(step, Activation) and isinstance(before, Conv2D)
                   for before, step in zip(model.layers, model.layers[1:], strict=False) if step in alone)


def test_the_plan_reads_as_the_runs_it_fused():
    steps = ZOO["cifar10"](0).steps()
    lines = fused.describe(steps).splitlines()
    assert lines[1].split() == ["ConvBlock", "conv2d_1", "+", "batch_normalization_1", "+", "re_lu_1", "+",
                                "max_pooling2d", "+", "dropout"]
    assert lines[-1].split() == ["Dense", "dense", "(on", "its", "own)"]
    seed_lines = fused.describe(ZOO["seed"](0).steps()).splitlines()
    assert seed_lines[0].split()[0] == "ConvPoolBlock"  # the seed model keeps its Winograd/small-window step


def train_two_epochs(name: str, implementation: str, dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """The loss history and final weights of zoo model ``name`` after two epochs of 4 batches (plain SGD:
    Adam's first steps move every weight by the learning rate times the sign of its gradient, so a
    gradient that is round-off on both sides would move a weight by twice the learning rate)."""
    model = ZOO[name](0).astype(dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, *model.input_shape)).astype(np.float32).astype(dtype)
    y = rng.integers(0, 10, 32)
    model.compile(SGD(0.01), loss="sparse_categorical_crossentropy", implementation=implementation)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=0)
    return np.array(history.history["loss"]), model.get_weights()


@pytest.mark.parametrize("name", ZOO)
def test_two_epochs_of_training_end_where_the_reference_ends(name):
    """Same data, seeds and weights. In float64 the fused steps' loss history and final weights equal the
    layers' own passes to 1e-9. In float32 both implementations round, and training carries the differences
    on; the fused steps end no further from the float64 result than twice as far as the reference does."""
    exact_loss, exact_weights = train_two_epochs(name, "reference", np.float64)
    loss, weights = train_two_epochs(name, "fast", np.float64)
    np.testing.assert_allclose(loss, exact_loss, rtol=1e-9)
    for a, b in zip(weights, exact_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(b).max())
    (fast_loss, fast_weights), (ref_loss, ref_weights) = (train_two_epochs(name, implementation, np.float32)
                                                          for implementation in ("fast", "reference"))
    assert np.abs(fast_loss - exact_loss).max() <= 2 * np.abs(ref_loss - exact_loss).max() + 1e-6
    for fast, ref, exact in zip(fast_weights, ref_weights, exact_weights, strict=True):
        assert fast.dtype == ref.dtype == np.float32
        error, reference_error = np.abs(fast - exact).max(), np.abs(ref - exact).max()
        assert error <= 2 * reference_error + 1e-6 * np.abs(exact).max(), (error, reference_error)
