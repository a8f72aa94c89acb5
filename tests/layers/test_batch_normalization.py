"""BatchNormalization (:mod:`minicnn.layers.batch_normalization`) beyond the layer spec: the moving
statistics, in training, inference, frozen and saved, and a wrong backward that gradcheck catches."""

import numpy as np

from minicnn import BatchNormalization, Dense, Flatten, Input, Sequential, gradcheck, load_model

rng = np.random.default_rng


def test_batchnorm_training_normalises_with_batch_statistics_and_moves_the_moving_ones():
    x = rng(0).normal(3.0, 2.0, (16, 4, 4, 5)).astype(np.float32)
    layer = BatchNormalization()
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    # variance var / (var + eps): 1 up to epsilon = 1e-3
    expected_var = x.var(axis=(0, 1, 2)) / (x.var(axis=(0, 1, 2)) + 1e-3)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), expected_var, rtol=1e-4)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.01 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.99 + 0.01 * x.var(axis=(0, 1, 2)), rtol=1e-5)
    assert layer.momentum == 0.99 and layer.epsilon == 1e-3


def test_batchnorm_inference_uses_moving_statistics_and_leaves_them_alone():
    layer = BatchNormalization()
    layer.build((3,))
    layer.state = {"moving_mean": np.array([1, 2, 3], np.float32),
                   "moving_variance": np.array([4, 1, 0.25], np.float32)}
    layer.params["gamma"][:] = 2.0
    layer.params["beta"][:] = 0.5
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 3.5]], np.float32)
    out = layer.forward(x)
    expected = 2.0 * (x - [1, 2, 3]) / np.sqrt(np.array([4, 1, 0.25]) + 1e-3) + 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(layer.state["moving_mean"], [1, 2, 3])
    np.testing.assert_allclose(out[0], layer.forward(x[:1])[0])  # one sample's output ignores the batch


def test_frozen_batchnorm_runs_in_inference_mode_even_in_training():
    layer = BatchNormalization(trainable=False)
    x = rng(0).normal(5.0, 1.0, (8, 3)).astype(np.float32)
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(layer.state["moving_mean"], 0.0)


def test_batchnorm_state_is_saved_loaded_and_in_get_weights(tmp_path):
    model = Sequential([Input((4, 4, 2)), BatchNormalization(), Flatten(), Dense(3, activation="softmax")])
    model.get_layer("batch_normalization").forward(rng(0).normal(2, 3, (5, 4, 4, 2)).astype(np.float32),
                                                   training=True)
    names = [w.shape for w in model.get_layer("batch_normalization").get_weights()]
    assert names == [(2,)] * 4 and len(model.get_weights()) == 6
    model.save(tmp_path / "bn.npz")
    loaded = load_model(tmp_path / "bn.npz")
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert loaded.get_layer("batch_normalization").state["moving_mean"].any()


def test_gradcheck_catches_a_batchnorm_backward_that_ignores_the_batch_statistics():
    class Broken(BatchNormalization):
        def backward_pass(self, dout, cache):
            _, grads = super().backward_pass(dout, cache)
            return dout * self.params["gamma"] * cache["inv_std"], grads  # as if mean and var were constants

    assert not gradcheck.check_layer(Broken(), rng(0).standard_normal((5, 3))).ok
