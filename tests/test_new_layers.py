"""The layers that come after MNIST: BatchNormalization, average pooling, Activation, LeakyReLU,
sigmoid and tanh, and Conv2D's use_bias, kernel_initializer and unequal strides.

Forwards against independent definitions, backwards against float64 gradient checks
(reference implementation by default, as :mod:`minicnn.gradcheck` does), kernels in both implementations.
"""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    LeakyReLU,
    MaxPool2D,
    Sequential,
    fused,
    gradcheck,
)
from minicnn.activations import sigmoid, tanh
from minicnn.kernels import im2col as conv_kernels
from minicnn.layers import initializers

rng = np.random.default_rng


def direct_conv(x, W, b, strides, pads):
    """Convolution from its definition, one output pixel at a time, with separate row/column strides."""
    top, bottom, left, right = pads
    (sh, sw), (kh, kw, _, f) = strides, W.shape
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    z = np.zeros((x.shape[0], oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            z[:, i, j] = np.einsum("nabc,abcf->nf", xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw], W) + b
    return z


# --------------------------------------------------------------------------- forward definitions


@pytest.mark.parametrize("strides,padding,kernel", [((1, 2), "same", (3, 3)), ((2, 1), "valid", (2, 3)),
                                                    ((3, 2), "same", (1, 4))])
def test_conv2d_unequal_strides_match_the_definition(implementation, strides, padding, kernel):
    x = rng(0).standard_normal((2, 9, 8, 3)).astype(np.float32)
    layer = Conv2D(4, kernel, strides=strides, padding=padding, seed=0)
    layer.build(x.shape[1:])
    layer.params["bias"] = rng(1).standard_normal(4).astype(np.float32)
    W, b = layer.params["kernel"], layer.params["bias"]
    expected = direct_conv(x.astype(np.float64), W, b, strides, layer.pads)
    np.testing.assert_allclose(layer.forward(x), expected, atol=1e-5)
    assert layer.output_shape == expected.shape[1:]


def test_conv2d_same_padding_with_unequal_strides_pads_as_tensorflow():
    layer = Conv2D(1, 3, strides=(2, 1), padding="same")
    layer.build((8, 7, 1))
    assert layer.pads == (0, 1, 1, 1)  # rows: ceil(8/2)=4 outputs need 9 rows; columns: 7 outputs need 9
    assert layer.output_shape == (4, 7, 1)


def test_conv2d_without_bias_has_only_a_kernel():
    layer = Conv2D(3, 2, use_bias=False, seed=0)
    x = rng(0).standard_normal((2, 5, 5, 2)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert list(layer.params) == ["kernel"] and layer.count_params() == 2 * 2 * 2 * 3
    np.testing.assert_allclose(out, direct_conv(x, layer.params["kernel"], 0.0, (1, 1), (0, 0, 0, 0)),
                               atol=1e-5)
    layer.backward(np.ones_like(out))
    assert list(layer.grads) == ["kernel"]


@pytest.mark.parametrize("stride", [(1, 2), (2, 3), (3, 1)])
def test_im2col_and_col2im_with_unequal_strides_are_equal_in_both_implementations(stride):
    x = rng(0).standard_normal((2, 9, 8, 3))
    pads = (1, 0, 2, 1)
    reference = conv_kernels.im2col_reference(x, 3, 2, stride, pads)
    np.testing.assert_array_equal(conv_kernels.im2col_numba(x, 3, 2, stride, pads), reference)
    d = rng(1).standard_normal(reference.shape)
    dx = conv_kernels.col2im_reference(d, x.shape, stride, pads)
    fast = conv_kernels.col2im_numba(d, x.shape, stride, pads)
    np.testing.assert_allclose(fast, dx, rtol=1e-12, atol=1e-12)
    assert np.isclose(np.sum(reference * d), np.sum(x * dx))  # col2im is the adjoint of im2col


@pytest.mark.parametrize("name,fan_in,fan_out", [("glorot_uniform", 300, 200), ("he_uniform", 300, 200),
                                                 ("he_normal", 300, 200)])
def test_initializers_have_keras_variances(name, fan_in, fan_out):
    values = initializers.INITIALIZERS[name]((400, 500), fan_in, fan_out, rng(0))
    assert values.dtype == np.float32
    values = values.astype(np.float64)
    expected = {"glorot_uniform": 2 / (fan_in + fan_out), "he_uniform": 2 / fan_in, "he_normal": 2 / fan_in}
    assert abs(values.var() / expected[name] - 1) < 0.02
    assert abs(values.mean()) < 0.01 * np.sqrt(expected[name])
    if name == "he_normal":  # truncated at two of the untruncated deviations
        assert np.abs(values).max() <= 2 * np.sqrt(2 / fan_in) / 0.87962566103423978


def test_conv2d_kernel_initializer_is_used_and_checked():
    layer = Conv2D(64, 3, kernel_initializer="zeros")
    layer.build((5, 5, 16))
    assert not layer.params["kernel"].any()
    he = Conv2D(64, 3, kernel_initializer="he_uniform", seed=0)
    he.build((5, 5, 16))
    assert np.abs(he.params["kernel"]).max() <= np.sqrt(6 / (9 * 16))
    assert np.abs(he.params["kernel"]).max() > np.sqrt(6 / (9 * 16 + 9 * 64))  # beyond glorot's limit
    with pytest.raises(ValueError, match="Conv2D: kernel_initializer must be one of"):
        Conv2D(2, 3, kernel_initializer="orthogonal")


def test_average_pooling_matches_the_definition():
    x = rng(0).standard_normal((2, 7, 8, 3))
    out = AveragePooling2D((3, 2), strides=(2, 3)).forward(x)
    expected = np.array([[[x[n, 2 * i:2 * i + 3, 3 * j:3 * j + 2, c].mean() for c in range(3)]
                          for j in range(3)] for i in range(3) for n in range(2)]).reshape(3, 2, 3, 3)
    np.testing.assert_allclose(out, expected.transpose(1, 0, 2, 3))


def test_global_average_pooling_is_the_mean_over_positions():
    x = rng(0).standard_normal((3, 4, 5, 6))
    np.testing.assert_allclose(GlobalAveragePooling2D().forward(x), x.mean(axis=(1, 2)))


def test_leaky_relu_uses_keras_3_default_slope():
    layer = LeakyReLU()
    assert layer.negative_slope == 0.3
    np.testing.assert_array_equal(layer.forward(np.array([[-2.0, 0.0, 3.0]])), [[-0.6, 0.0, 3.0]])
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope"):
        LeakyReLU(-0.1)


def test_sigmoid_and_tanh_are_exact_and_do_not_overflow():
    z = np.array([-1000.0, -20.0, -1.0, 0.0, 1.0, 20.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        s = sigmoid(z)
    np.testing.assert_allclose(s[1:-1], 1 / (1 + np.exp(-z[1:-1])), rtol=1e-14)
    assert s[0] == 0.0 and s[-1] == 1.0
    np.testing.assert_allclose(tanh(z), np.tanh(z))
    assert sigmoid(z.astype(np.float32)).dtype == np.float32


def test_activation_layer_takes_every_activation_name():
    x = rng(0).standard_normal((3, 4))
    cases = [("sigmoid", 1 / (1 + np.exp(-x))), ("tanh", np.tanh(x)), ("relu", np.maximum(x, 0)),
             ("linear", x)]
    for name, expected in cases:
        np.testing.assert_allclose(Activation(name).forward(x), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        Activation("gelu")


# --------------------------------------------------------------------------- BatchNormalization


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
    from minicnn import load_model
    loaded = load_model(tmp_path / "bn.npz")
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert loaded.get_layer("batch_normalization").state["moving_mean"].any()


# --------------------------------------------------------------------------- gradient checks

NEW_LAYERS = [
    ("conv strides (1, 2) same", lambda: Conv2D(3, 3, strides=(1, 2), padding="same", seed=0), (2, 7, 8, 2)),
    ("conv strides (2, 1) valid (2, 3)", lambda: Conv2D(2, (2, 3), strides=(2, 1), seed=0), (2, 7, 6, 2)),
    ("conv no bias tanh", lambda: Conv2D(3, 3, use_bias=False, activation="tanh", seed=0), (2, 5, 5, 2)),
    ("conv sigmoid he_normal", lambda: Conv2D(3, 2, activation="sigmoid", kernel_initializer="he_normal",
                                              seed=0), (2, 5, 4, 2)),
    ("dense tanh", lambda: Dense(4, activation="tanh", seed=0), (3, 5)),
    ("batchnorm images", lambda: BatchNormalization(), (4, 3, 3, 2)),
    ("batchnorm vectors", lambda: BatchNormalization(momentum=0.9, epsilon=1e-5), (6, 4)),
    ("batchnorm frozen", lambda: BatchNormalization(trainable=False), (4, 3, 3, 2)),
    ("average pooling", lambda: AveragePooling2D(2), (2, 6, 5, 3)),
    ("average pooling overlapping", lambda: AveragePooling2D((3, 2), strides=(1, 2)), (2, 6, 7, 2)),
    ("global average pooling", lambda: GlobalAveragePooling2D(), (3, 4, 5, 2)),
    ("activation sigmoid", lambda: Activation("sigmoid"), (3, 5)),
    ("activation tanh", lambda: Activation("tanh"), (3, 2, 2, 2)),
    ("activation softmax", lambda: Activation("softmax"), (3, 5)),
    ("leaky relu", lambda: LeakyReLU(), (3, 4, 4, 2)),
    ("leaky relu slope 0.01", lambda: LeakyReLU(0.01), (3, 6)),
]


@pytest.mark.parametrize("name,make,shape", NEW_LAYERS, ids=[case[0] for case in NEW_LAYERS])
def test_new_layer_gradients(name, make, shape):
    # Not rng(0): check_layer draws its upstream gradient g from seed 0, and g == x would make
    # BatchNormalization's dx vanish (its output ignores shifts and scalings along x).
    x = rng(42).standard_normal(shape)
    layer = make()
    layer.build(shape[1:])
    if isinstance(layer, BatchNormalization) and not layer.trainable:  # moving statistics away from 0 and 1
        layer.state = {"moving_mean": rng(1).standard_normal(shape[-1]).astype(np.float32),
                       "moving_variance": rng(2).uniform(0.5, 2, shape[-1]).astype(np.float32)}
    report = gradcheck.check_layer(layer, x)
    report.assert_ok()
    assert {c.name for c in report.checks} == {"x", *layer.params}


@given(n=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8), k=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]),
       use_bias=st.booleans())
def test_conv2d_gradients_with_unequal_strides_in_both_implementations(n, h, w, k, sh, sw, padding, use_bias):
    x = rng(n * h * w).standard_normal((n, h, w, 2))
    layer = Conv2D(2, k, strides=(sh, sw), padding=padding, use_bias=use_bias, seed=1)
    for implementation in ("reference", "fast"):
        gradcheck.check_layer(layer, x, implementation=implementation).assert_ok()


def test_new_layers_backward_returns_new_arrays_and_leaves_dout_alone(implementation):
    for _, make, shape in NEW_LAYERS:
        layer = make()
        x = rng(0).standard_normal(shape).astype(np.float32)
        out = layer.forward(x, training=True)
        dout = rng(1).standard_normal(out.shape).astype(np.float32)
        before = dout.copy()
        dx = layer.backward(dout)
        assert dx.shape == x.shape and dx.dtype == np.float32
        assert not np.shares_memory(dx, dout)
        np.testing.assert_array_equal(dout, before)


def test_gradcheck_catches_a_batchnorm_backward_that_ignores_the_batch_statistics():
    class Broken(BatchNormalization):
        def backward_pass(self, dout, cache):
            _, grads = super().backward_pass(dout, cache)
            return dout * self.params["gamma"] * cache["inv_std"], grads  # as if mean and var were constants

    assert not gradcheck.check_layer(Broken(), rng(0).standard_normal((5, 3))).ok


# --------------------------------------------------------------------------- the fast implementation


def test_fusion_declines_conv_without_bias_or_with_unequal_strides():
    def first_step(conv):
        model = Sequential([Input((8, 8, 1)), conv, MaxPool2D(2)])
        return model.steps()[0]

    assert isinstance(first_step(Conv2D(2, 3, activation="relu")), fused.ConvPoolBlock)
    assert isinstance(first_step(Conv2D(2, 3, activation="relu", use_bias=False)), Conv2D)
    assert isinstance(first_step(Conv2D(2, 3, strides=(1, 2), activation="relu")), Conv2D)


def test_conv_bn_relu_pool_trains_identically_in_both_implementations():
    """Conv2D -> BatchNormalization -> ReLU -> pooling is not fused: both implementations run it layer
    by layer."""
    def model():
        return Sequential([Input((8, 8, 2)), Conv2D(4, 3, padding="same", use_bias=False, seed=0),
                           BatchNormalization(), Activation("relu"), MaxPool2D(2), GlobalAveragePooling2D(),
                           Dense(3, activation="softmax", seed=1)])

    assert not any(isinstance(step, fused.ConvPoolBlock) for step in model().steps())
    x = rng(0).standard_normal((6, 8, 8, 2)).astype(np.float32)
    y = rng(1).integers(0, 3, 6)
    weights = []
    for implementation in ("reference", "fast"):
        m = model()
        m.compile("adam", loss="sparse_categorical_crossentropy", implementation=implementation)
        m.fit(x, y, batch_size=3, epochs=2, verbose=0, seed=0)
        weights.append(m.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_check_model_passes_with_every_new_layer():
    model = Sequential([
        Input((8, 8, 2)), Conv2D(3, 3, strides=(1, 2), padding="same", use_bias=False, seed=0),
        BatchNormalization(), LeakyReLU(), AveragePooling2D(2), Conv2D(4, 2, activation="tanh", seed=1),
        GlobalAveragePooling2D(), Dense(3, activation="sigmoid", seed=2), Activation("softmax"),
    ])
    x = rng(0).standard_normal((4, 8, 8, 2))
    gradcheck.check_model(copy.deepcopy(model), x, np.array([0, 1, 2, 1]), implementation="both").assert_ok()
