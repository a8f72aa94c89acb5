"""Every layer's forward against an independent definition, and its backward against gradcheck."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Softmax, gradcheck


def direct_conv(x, W, b, stride, pads):
    """Convolution straight from its definition, with einsum over each window."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, f = W.shape
    oh, ow = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    z = np.zeros((x.shape[0], oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            z[:, i, j] = np.einsum("nabc,abcf->nf", window, W) + b
    return z


@pytest.mark.parametrize("padding,stride,hw,expected_pads", [
    ("same", 1, (28, 28), (1, 1, 1, 1)),
    ("same", 2, (7, 8), (1, 1, 0, 1)),   # TensorFlow puts the odd pad at the bottom/right
    ("valid", 2, (7, 7), (0, 0, 0, 0)),
])
def test_conv2d_forward_matches_direct_convolution(implementation, padding, stride, hw, expected_pads):
    layer = Conv2D(5, 3, strides=stride, padding=padding, seed=0)
    x = np.random.default_rng(0).standard_normal((2, *hw, 3)).astype(np.float32)
    layer.build(x.shape[1:])
    layer.params["bias"] = np.linspace(-1, 1, 5).astype(np.float32)
    assert layer.compute_pads(*hw) == expected_pads
    expected = direct_conv(x, layer.params["kernel"], layer.params["bias"], stride, expected_pads)
    out = layer.forward(x)
    assert out.shape == expected.shape == (2, *layer.output_shape)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_same_padding_keeps_the_spatial_size_at_stride_one():
    assert Conv2D(8, 3, padding="same").compute_output_shape((28, 28, 1)) == (28, 28, 8)
    assert Conv2D(8, 3, strides=2, padding="same").compute_output_shape((7, 7, 1)) == (4, 4, 8)
    assert Conv2D(8, 3, strides=2, padding="valid").compute_output_shape((7, 7, 1)) == (3, 3, 8)


def test_glorot_uniform_limits_and_zero_bias():
    layer = Conv2D(64, 3, seed=0)
    layer.build((14, 14, 32))
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))
    W = layer.params["kernel"]
    assert W.dtype == np.float32 and W.shape == (3, 3, 32, 64)
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.95 * limit
    assert abs(W.std() - limit / np.sqrt(3)) < 0.02 * limit
    np.testing.assert_array_equal(layer.params["bias"], 0)


def test_seeded_layers_initialise_identically():
    a, b = Dense(4, seed=3), Dense(4, seed=3)
    a.build((6,))
    b.build((6,))
    np.testing.assert_array_equal(a.params["kernel"], b.params["kernel"])


def test_maxpool_forward_matches_numpy_max(implementation):
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32)
    out = MaxPool2D(2).forward(x)
    np.testing.assert_array_equal(out, x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4)))


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


def test_flatten_uses_nhwc_order():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    out = Flatten().forward(x)
    np.testing.assert_array_equal(out[0], np.arange(12))  # channels vary fastest


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], np.float32)
    p = Softmax().forward(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)


# --------------------------------------------------------------------------- gradient checks

LAYERS = [
    ("conv same relu", lambda: Conv2D(4, 3, padding="same", activation="relu", seed=0), (2, 6, 5, 3)),
    ("conv valid", lambda: Conv2D(3, 3, seed=0), (2, 7, 7, 2)),
    ("conv stride 2 same", lambda: Conv2D(3, 3, strides=2, padding="same", seed=0), (2, 7, 6, 2)),
    ("conv stride 2 valid odd", lambda: Conv2D(2, (3, 2), strides=2, seed=0), (3, 9, 7, 1)),
    ("maxpool 2", lambda: MaxPool2D(2), (2, 6, 6, 3)),
    ("maxpool odd size", lambda: MaxPool2D(2), (2, 7, 5, 2)),
    ("maxpool overlapping", lambda: MaxPool2D(3, strides=2), (2, 7, 7, 2)),
    ("dropout", lambda: Dropout(0.5, seed=1), (3, 4, 4, 2)),
    ("flatten", lambda: Flatten(), (2, 3, 3, 2)),
    ("dense linear", lambda: Dense(5, seed=0), (4, 7)),
    ("dense relu", lambda: Dense(5, activation="relu", seed=0), (4, 7)),
    ("dense softmax", lambda: Dense(5, activation="softmax", seed=0), (4, 7)),
    ("relu", lambda: ReLU(), (3, 5)),
    ("softmax", lambda: Softmax(), (3, 5)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_layer_gradients(implementation, name, make, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer = make()
    report = gradcheck.check_layer(layer, x)
    report.assert_ok()
    expected = {"x", "kernel", "bias"} if isinstance(layer, (Conv2D, Dense)) else {"x"}
    assert {c.name for c in report.checks} == expected


@given(n=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8), c=st.integers(1, 3),
       f=st.integers(1, 4), k=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.sampled_from(["same", "valid"]), activation=st.sampled_from([None, "relu"]))
def test_conv2d_gradients_on_random_shapes(n, h, w, c, f, k, stride, padding, activation):
    x = np.random.default_rng(n * h * w).standard_normal((n, h, w, c))
    layer = Conv2D(f, k, strides=stride, padding=padding, activation=activation, seed=1)
    gradcheck.check_layer(layer, x).assert_ok()


@given(n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 3),
       pool=st.integers(1, 3), stride=st.integers(1, 3))
def test_maxpool_gradients_on_random_shapes(n, h, w, c, pool, stride):
    if pool > min(h, w):
        return
    x = np.random.default_rng(h * w).permutation(n * h * w * c).reshape(n, h, w, c) * 0.1  # no ties
    gradcheck.check_layer(MaxPool2D(pool, strides=stride), x).assert_ok()


def test_gradcheck_catches_a_wrong_backward():
    class BrokenDense(Dense):
        def backward_affine_pass(self, dz, cache):
            dx, grads = super().backward_affine_pass(dz, cache)
            grads["bias"] = grads["bias"] * 1.01  # a 1% mistake
            return dx, grads

    report = gradcheck.check_layer(BrokenDense(3, seed=0), np.random.default_rng(0).random((4, 5)))
    assert not report.ok and report.errors["bias"] > 1e-3 and report.errors["kernel"] < 1e-6
    with pytest.raises(AssertionError, match="bias"):
        report.assert_ok()


# --------------------------------------------------------------------------- the layer contract

@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_backward_returns_new_array_and_leaves_dout_alone(implementation, name, make, shape):
    layer = make()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = layer.forward(x, training=True)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    before = dout.copy()
    params_before = {k: v.copy() for k, v in layer.params.items()}
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dout, before)
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert not np.shares_memory(dx, dout)
    assert set(layer.grads) == set(layer.params)
    for key, value in layer.params.items():  # backward never updates weights
        np.testing.assert_array_equal(value, params_before[key])
        assert layer.grads[key].shape == value.shape and layer.grads[key].dtype == np.float32


def test_inference_forward_keeps_nothing_for_backward():
    layer = Dense(3, seed=0)
    layer.forward(np.ones((2, 4), np.float32), training=False)
    with pytest.raises(RuntimeError, match="forward\\(x, training=True\\)"):
        layer.backward(np.ones((2, 3), np.float32))


def test_the_base_class_checks_what_the_hooks_return_naming_the_layer():
    class DxOnly(Flatten):
        def backward_pass(self, dout, cache):
            return dout.reshape(cache["x_shape"]).copy()  # forgot ", {}": two rows would unpack

    class NoBiasGradient(Dense):
        def backward_affine_pass(self, dz, cache):
            return dz @ self.params["kernel"].T, {"kernel": cache["x"].T @ dz}

    class TransposedKernelGradient(Dense):
        def backward_affine_pass(self, dz, cache):
            return dz @ self.params["kernel"].T, {"kernel": dz.T @ cache["x"], "bias": dz.sum(axis=0)}

    x = np.ones((2, 3, 2), np.float32)
    layer = DxOnly(name="flat")
    layer.forward(x, training=True)
    with pytest.raises(TypeError, match=r'"flat" \(DxOnly\): backward_pass must return a pair \(dx, grads\)'):
        layer.backward(np.ones((2, 6), np.float32))
    for cls, message in [(NoBiasGradient, r"exactly \['bias', 'kernel'\].*got \['kernel'\]"),
                         (TransposedKernelGradient, r"'kernel' must have the shape \(3, 2\).*got \(2, 3\)")]:
        dense = cls(2, seed=0, name="head")
        dense.forward(np.ones((4, 3), np.float32), training=True)
        with pytest.raises(ValueError, match=rf'layer "head" \({cls.__name__}\): .*{message}'):
            dense.backward(np.ones((4, 2), np.float32))
        assert dense.grads == {}  # nothing stored from a wrong backward


def test_argument_errors_name_the_class_itself():
    class WideDense(Dense):
        pass

    with pytest.raises(ValueError, match=r"^WideDense: units must be an integer >= 1; got 0"):
        WideDense(0)


# --------------------------------------------------------------------------- bad input

def test_wrong_input_shape_names_the_layer():
    layer = Conv2D(4, 3, name="conv_a")
    layer.build((28, 28, 1))
    with pytest.raises(ValueError, match=r'"conv_a".*\(None, 28, 28, 1\).*\(5, 28, 28\)'):
        layer.forward(np.zeros((5, 28, 28), np.float32))


def test_wrong_dtype_is_a_type_error():
    layer = Dense(2)
    layer.build((3,))
    with pytest.raises(TypeError, match="float32.*float64"):
        layer.forward(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        Flatten().forward(np.zeros((1, 3), np.int64))


def test_wrong_gradient_shape_is_rejected():
    layer = Dense(2)
    layer.forward(np.zeros((4, 3), np.float32), training=True)
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(4, 3\)"):
        layer.backward(np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("make,message", [
    (lambda: Conv2D(0, 3), "filters"),
    (lambda: Conv2D(4, 3, padding="full"), "padding"),
    (lambda: Conv2D(4, 3, activation="gelu"), "activation"),
    (lambda: Dropout(1.0), "rate"),
    (lambda: Dense(-1), "units"),
    (lambda: MaxPool2D((2, 3)), "pool_size"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_dense_on_images_suggests_flatten():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).build((4, 4, 1))
