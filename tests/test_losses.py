"""The losses (:mod:`minicnn.losses`): the fused softmax + cross-entropy against its definition, and
``to_categorical``."""

import numpy as np
import pytest

from minicnn import to_categorical
from minicnn.losses import softmax_cross_entropy


def test_loss_and_gradient_match_the_definition():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4))
    y = to_categorical(rng.integers(0, 4, 6), 4, np.float64)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss, dz = softmax_cross_entropy(z, y)
    assert loss == pytest.approx(-np.mean(np.log(p[y == 1])), rel=1e-12)
    np.testing.assert_allclose(dz, (p - y) / 6, rtol=1e-12)


def test_loss_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4]], np.float32)
    loss, dz = softmax_cross_entropy(z, np.array([[0, 0, 1]], np.float32))
    assert loss == pytest.approx(2e4, rel=1e-6)  # log-sum-exp, not log(0)
    assert np.isfinite(dz).all()
    assert dz.dtype == np.float32


@pytest.mark.parametrize("labels,message", [
    ([0, 1, 10], r"\[0, 10\)"), ([-1, 2], r"\[0, 10\)"), ([0.5, 1], "whole numbers"),
    ([[0, 1]], r"shape \(N,\)"),
])
def test_to_categorical_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(labels, 10)


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
