"""The activation functions (:mod:`minicnn.activations`): exact, and without overflow."""

import numpy as np

from minicnn.activations import sigmoid, tanh


def test_sigmoid_and_tanh_are_exact_and_do_not_overflow():
    z = np.array([-1000.0, -20.0, -1.0, 0.0, 1.0, 20.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        s = sigmoid(z)
    np.testing.assert_allclose(s[1:-1], 1 / (1 + np.exp(-z[1:-1])), rtol=1e-14)
    assert s[0] == 0.0 and s[-1] == 1.0
    np.testing.assert_allclose(tanh(z), np.tanh(z))
    assert sigmoid(z.astype(np.float32)).dtype == np.float32
