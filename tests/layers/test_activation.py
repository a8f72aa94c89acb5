"""The activation layers (:mod:`minicnn.layers.activation`) beyond the layer spec: softmax on huge logits,
LeakyReLU's Keras 3 default slope."""

import numpy as np
import pytest

from minicnn import LeakyReLU, Softmax


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], np.float32)
    p = Softmax().forward(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)


def test_leaky_relu_uses_keras_3_default_slope():
    layer = LeakyReLU()
    assert layer.negative_slope == 0.3
    np.testing.assert_array_equal(layer.forward(np.array([[-2.0, 0.0, 3.0]])), [[-0.6, 0.0, 3.0]])
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope"):
        LeakyReLU(-0.1)
