"""Dropout (:mod:`minicnn.layers.dropout`): inverted, identity at inference, a new mask each step (its
training pass is random, so the spec compares only its inference with a definition)."""

import numpy as np

from minicnn import Dropout


def test_dropout_is_inverted_and_identity_at_inference():
    x = np.ones((200, 50), np.float32)
    layer = Dropout(0.25, seed=0)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert abs(out.mean() - 1.0) < 0.02  # expectation preserved by the 1/(1-rate) scale
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2.0 * out)  # the same mask routes the gradient


def test_dropout_draws_a_new_mask_each_step():
    layer = Dropout(0.5, seed=0)
    x = np.ones((10, 10), np.float32)
    assert not np.array_equal(layer.forward(x, True), layer.forward(x, True))
