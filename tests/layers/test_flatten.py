"""Flatten (:mod:`minicnn.layers.flatten`): NHWC order, as Keras' channels_last."""

import numpy as np

from minicnn import Flatten


def test_flatten_uses_nhwc_order():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    out = Flatten().forward(x)
    np.testing.assert_array_equal(out[0], np.arange(12))  # channels vary fastest
