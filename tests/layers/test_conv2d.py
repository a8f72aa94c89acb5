"""Conv2D (:mod:`minicnn.layers.conv2d`) beyond the layer spec: its pads and output shapes,
initialisers, a layer without bias, and gradient checks on random shapes and strides.

The forward against the definition, the gradient check and the contract of each configuration
are the spec's (``spec.py``)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn import Conv2D, gradcheck

from .spec import convolution

rng = np.random.default_rng


@pytest.mark.parametrize("padding,stride,hw,expected_pads", [
    ("same", 1, (28, 28), (1, 1, 1, 1)),
    ("same", 2, (7, 8), (1, 1, 0, 1)),   # TensorFlow puts the odd pad at the bottom/right
    ("valid", 2, (7, 7), (0, 0, 0, 0)),
])
def test_conv2d_pads_as_tensorflow(padding, stride, hw, expected_pads):
    """(What the output is, with these pads, is the spec's: ``spec.py``, the conv2d entries.)"""
    assert Conv2D(5, 3, strides=stride, padding=padding).compute_pads(*hw) == expected_pads



def test_same_padding_keeps_the_spatial_size_at_stride_one():
    assert Conv2D(8, 3, padding="same").compute_output_shape((28, 28, 1)) == (28, 28, 8)
    assert Conv2D(8, 3, strides=2, padding="same").compute_output_shape((7, 7, 1)) == (4, 4, 8)
    assert Conv2D(8, 3, strides=2, padding="valid").compute_output_shape((7, 7, 1)) == (3, 3, 8)



def test_conv2d_same_padding_with_unequal_strides_pads_as_tensorflow():
    layer = Conv2D(1, 3, strides=(2, 1), padding="same")
    layer.build((8, 7, 1))
    assert layer.pads == (0, 1, 1, 1)  # rows: ceil(8/2)=4 outputs need 9 rows; columns: 7 outputs need 9
    assert layer.output_shape == (4, 7, 1)



def test_glorot_uniform_limits_and_zero_bias():
    layer = Conv2D(64, 3, seed=0)
    layer.build((14, 14, 32))
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))
    W = layer.params["kernel"]
    assert W.dtype == np.float32 and W.shape == (3, 3, 32, 64)
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.95 * limit
    assert abs(W.std() - limit / np.sqrt(3)) < 0.02 * limit
    np.testing.assert_array_equal(layer.params["bias"], 0)



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


def test_conv2d_without_bias_has_only_a_kernel():
    layer = Conv2D(3, 2, use_bias=False, seed=0)
    x = rng(0).standard_normal((2, 5, 5, 2)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert list(layer.params) == ["kernel"] and layer.count_params() == 2 * 2 * 2 * 3
    np.testing.assert_allclose(out, convolution(x, layer.params["kernel"], 0.0, (1, 1), (0, 0, 0, 0)),
                               atol=1e-5)
    layer.backward(np.ones_like(out))
    assert list(layer.grads) == ["kernel"]



@given(n=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8), c=st.integers(1, 3),
       f=st.integers(1, 4), k=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.sampled_from(["same", "valid"]), activation=st.sampled_from([None, "relu"]))
def test_conv2d_gradients_on_random_shapes(n, h, w, c, f, k, stride, padding, activation):
    x = np.random.default_rng(n * h * w).standard_normal((n, h, w, c))
    layer = Conv2D(f, k, strides=stride, padding=padding, activation=activation, seed=1)
    gradcheck.check_layer(layer, x).assert_ok()



@given(n=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8), k=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]),
       use_bias=st.booleans())
def test_conv2d_gradients_with_unequal_strides_in_both_implementations(n, h, w, k, sh, sw, padding, use_bias):
    x = rng(n * h * w).standard_normal((n, h, w, 2))
    layer = Conv2D(2, k, strides=(sh, sw), padding=padding, use_bias=use_bias, seed=1)
    for implementation in ("reference", "fast"):
        gradcheck.check_layer(layer, x, implementation=implementation).assert_ok()
