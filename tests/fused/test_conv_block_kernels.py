"""The kernels of the general fused step (:mod:`minicnn.fused.conv_block_kernels`) compute what the
layers' reference passes compute."""

import numba
import numpy as np
import pytest

from minicnn import AveragePooling2D, Conv2D
from minicnn.fused import conv_block_kernels as fast
from minicnn.implementation import use
from minicnn.kernels.im2col import col2im_reference, im2col_reference
from minicnn.kernels.maxpool import maxpool_forward_numba


def conv_case(n, h, w, c, f, k, strides, padding, seed=0, dtype=np.float64):
    conv = Conv2D(f, k, strides=strides, padding=padding)
    conv.build((h, w, c))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    W = rng.standard_normal((*conv.kernel_size, c, f)).astype(dtype)
    return x, W, conv.strides, conv.pads


def by_definition(x, W, strides, pads, dz_rows):
    """Conv2D's forward rows ``im2col(x) @ W`` and backward ``(dW, dx)``, with the reference kernels."""
    kh, kw, c, f = W.shape
    cols = im2col_reference(x, kh, kw, strides, pads)
    rows = cols.reshape(-1, kh * kw * c)
    dW = (rows.T @ dz_rows).reshape(W.shape)
    dx = col2im_reference((dz_rows @ W.reshape(-1, f).T).reshape(cols.shape), x.shape, strides, pads)
    return rows @ W.reshape(-1, f), dW, dx


CONVOLUTIONS = [  # (N, H, W, C, F, kernel, strides, padding)
    (3, 9, 8, 5, 4, 3, 1, "same"),
    (2, 7, 7, 4, 3, 3, 1, "valid"),
    (2, 8, 6, 2, 3, 3, 1, "same"),
    (2, 9, 9, 3, 4, 5, 2, "same"),
    (2, 10, 7, 3, 2, 7, (1, 2), "valid"),
    (3, 5, 5, 6, 4, 1, 1, "valid"),  # pointwise: the input is its own im2col matrix
    (2, 6, 6, 3, 2, 1, 2, "same"),
    (3, 24, 24, 64, 2, 5, 1, "same"),  # images larger than a block: several blocks
]


SMALL_WINDOWS = [  # (N, H, W, C, F, kernel, strides, padding): at most 32 values a window
    (3, 9, 9, 1, 6, 5, 1, "same"),  # LeNet-5's first layer
    (2, 8, 7, 3, 5, 3, 1, "same"),  # a first layer on RGB images
    (2, 9, 9, 1, 4, 3, 2, "same"),  # stride 2, asymmetric padding
    (2, 10, 10, 1, 32, 3, 1, "valid"),
    (1, 6, 6, 2, 7, 2, 1, "same"),  # an even kernel
]


@pytest.mark.parametrize("input_gradient", [True, False])
@pytest.mark.parametrize("case", CONVOLUTIONS + SMALL_WINDOWS)
@pytest.mark.parametrize("method", ["blocked", "by shape"])
def test_the_convolution_forward_and_backward_equal_conv2d(case, input_gradient, method):
    """Blocks of im2col rows on any shape, and conv_forward / conv_backward with whichever method they
    pick for the shape (Winograd, phase planes, blocks)."""
    forward, backward = ((fast.conv_forward_blocked, fast.conv_backward_blocked) if method == "blocked"
                         else (fast.conv_forward, fast.conv_backward))
    x, W, strides, pads = conv_case(*case)
    rows = forward(x, W, strides, pads)
    dz = np.random.default_rng(1).standard_normal(rows.shape)
    expected, dW_expected, dx_expected = by_definition(x, W, strides, pads, dz)
    np.testing.assert_allclose(rows, expected, rtol=1e-10, atol=1e-10)
    dW, dx = backward(dz, x, W, strides, pads, input_gradient)
    np.testing.assert_allclose(dW, dW_expected, rtol=1e-10, atol=1e-10)
    if input_gradient:
        np.testing.assert_allclose(dx, dx_expected, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None


def test_large_images_take_several_blocks():
    x, W, strides, pads = conv_case(*CONVOLUTIONS[-1])
    kh, kw, c, _ = W.shape
    oh, ow = fast.conv_output_shape(x.shape, W.shape, strides, pads)
    assert fast.images_per_block(oh, ow, kh * kw * c, x.itemsize) < x.shape[0]


@pytest.mark.parametrize("kernel,strides,channels,expected", [
    (3, (1, 1), 4, "winograd"),  # 36-value windows, 3x3 stride 1
    (3, (1, 1), 3, "small"),  # an RGB first layer: 27 values
    (5, (1, 1), 1, "small"),  # LeNet-5's first layer: 25 values
    (3, (2, 2), 1, "small"),
    (3, (1, 2), 1, "blocked"),  # a different stride down and across
    (3, (2, 2), 8, "blocked"),  # stride 2
    (5, (1, 1), 8, "blocked"),  # 5x5 on 8 channels
    (1, (1, 1), 64, "blocked"),  # pointwise
])
def test_each_shape_goes_to_its_method(monkeypatch, kernel, strides, channels, expected):
    calls = []
    for name, forward, backward in [("winograd", "conv_forward_winograd", "conv_backward_winograd"),
                                    ("small", "_conv_forward_small", "_conv_backward_small"),
                                    ("blocked", "conv_forward_blocked", "conv_backward_blocked")]:
        monkeypatch.setattr(fast, forward, lambda *a, name=name: calls.append(name))
        monkeypatch.setattr(fast, backward, lambda *a, name=name: calls.append(name))
    W = np.zeros((kernel, kernel, channels, 2))
    x = np.zeros((1, 9, 9, channels))
    fast.conv_forward(x, W, strides, (0, 0, 0, 0))
    fast.conv_backward(np.zeros((1, 2)), x, W, strides, (0, 0, 0, 0))
    assert calls == [expected, expected]


@pytest.mark.parametrize("case", [CONVOLUTIONS[0], CONVOLUTIONS[3], CONVOLUTIONS[-1]])
def test_the_convolution_is_the_same_with_one_or_two_threads(case):
    """Blocks of images fixed by the shapes, each block's share of dW added in block order: the same
    bits however many threads share the blocks out (the last case has several blocks)."""
    x, W, strides, pads = conv_case(*case[:-1], case[-1], seed=3, dtype=np.float32)
    shape = fast.conv_forward_blocked(x, W, strides, pads).shape
    dz = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append((fast.conv_forward_blocked(x, W, strides, pads),
                            *fast.conv_backward_blocked(dz, x, W, strides, pads), *fast.channel_moments(dz)))
    finally:
        numba.set_num_threads(threads)
    for result in results[1:]:
        for a, b in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(a, b)  # fixed chunks: the same sums in the same order


def test_the_max_pool_norm_backward_is_the_same_with_one_or_two_threads():
    """Its sums are kept per fixed run of images and added in run order."""
    rng = np.random.default_rng(8)
    norm_input = rng.standard_normal((40, 6, 7, 5)).astype(np.float32)
    pooled, argmax = maxpool_forward_numba(np.maximum(norm_input, 0), 2, 2)
    d = rng.standard_normal(argmax.shape).astype(np.float32)
    center, inv_std, gamma = (rng.uniform(0.5, 1.5, 5).astype(np.float32) for _ in range(3))
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append(fast.max_pool_norm_backward(d, argmax, 2, norm_input, center, inv_std, gamma, True,
                                                       pooled, relu_before=False))
    finally:
        numba.set_num_threads(threads)
    for result in results[1:]:
        for a, b in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize(("shape", "pool"), [((3, 6, 8, 5), 2), ((2, 7, 9, 3), 3), ((2, 5, 5, 4), 2)])
def test_affine_activate_max_pool_is_affine_activate_then_max_pooling_bit_for_bit(shape, pool, activation):
    # ReLU's zeros tie in many windows: the first maximum must win, as in max-pooling
    rng = np.random.default_rng(3)
    z = rng.standard_normal(shape).astype(np.float32)
    center, scale, shift = (rng.standard_normal(shape[-1]) for _ in range(3))
    y = fast.affine_activate(z.reshape(-1, shape[-1]), center, scale, shift, activation).reshape(shape)
    expected = maxpool_forward_numba(y, pool, pool)
    got = fast.affine_activate_max_pool(z, center, scale, shift, activation, pool)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_channel_moments_keep_their_digits_when_the_mean_is_large():
    """float32 values around 1000 with a spread of 0.01: the two-pass float64 variance is that of the
    values; ``E[z²] - E[z]²`` in float32 would lose every digit."""
    rng = np.random.default_rng(0)
    z = (1000 + 0.01 * rng.standard_normal((5000, 3))).astype(np.float32)
    mean, var = fast.channel_moments(z)
    exact = z.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(var, exact.var(axis=0), rtol=1e-9)


@pytest.mark.parametrize("pool,strides", [((2, 2), None), ((3, 2), (1, 2)), ((2, 3), (2, 1))])
def test_average_pooling_equals_the_layer(pool, strides):
    layer = AveragePooling2D(pool, strides)
    layer.build((7, 8, 3))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    with use("reference"):
        expected = layer.forward(x, training=True)
        d = rng.standard_normal(expected.shape).astype(np.float32)
        dx_expected = layer.backward(d)
    out = fast.avgpool_forward_numba(x, layer.pool_size, layer.strides)
    np.testing.assert_array_equal(out, expected)  # the same sums in the same order
    dx = fast.avgpool_backward_numba(d, x.shape, layer.pool_size, layer.strides)
    # overlapping windows add in another order
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
@pytest.mark.parametrize(("shape", "window"), [((3, 8, 6, 5), (2, 2)), ((2, 7, 9, 6), (2, 3)),
                                               ((4, 5, 7, 3), (5, 7))])
def test_average_pool_activation_backward_is_the_two_backwards_in_one_pass(shape, window, activation):
    """``dz`` bit for bit as average pooling's backward then the activation's, 0 in the rows and columns
    past the last window (7 rows in windows of 2, 9 columns in windows of 2 or 3 are not all covered);
    a window of the whole map is global average pooling. ``db`` is the same sum in float64."""
    rng = np.random.default_rng(4)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    a[0, 0, 0] = 0.0  # ReLU's derivative at 0 is 0
    pooled = (shape[0], shape[1] // window[0], shape[2] // window[1], shape[3])
    d = rng.standard_normal(pooled).astype(np.float32)
    spread = fast.avgpool_backward_numba(d, shape, window, window).reshape(-1, shape[3])
    dz_expected, db_expected, _ = fast.activation_norm_backward(spread, a.reshape(-1, shape[3]), activation)
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append(fast.average_pool_activation_backward(d, a, window, activation))
    finally:
        numba.set_num_threads(threads)
    for dz, db in results:
        np.testing.assert_array_equal(dz, dz_expected)
        assert db.dtype == np.float32
        np.testing.assert_allclose(db, db_expected, rtol=1e-6)
        np.testing.assert_array_equal(db, results[0][1])  # fixed runs, added in order


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
def test_affine_activate_and_its_backward_equal_the_layers(activation):
    """``act((z - center) * scale + shift)`` and, with BatchNormalization's statistics, the backward
    ``dz``, ``dgamma``, ``dbeta`` as the activation's then BatchNormalization's formulas give them."""
    from minicnn.activations import ACTIVATIONS

    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 4))
    center, inv_std = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    activate, activation_backward = ACTIVATIONS[activation]
    x_hat = (z - center) * inv_std
    a = fast.affine_activate(z, center, gamma * inv_std, beta, activation)
    np.testing.assert_allclose(a, activate(x_hat * gamma + beta), rtol=1e-12, atol=1e-14)
    da = rng.standard_normal(z.shape)
    dy = activation_backward(da, a)
    for batch_statistics in (True, False):
        dz, dbeta, dgamma = fast.activation_norm_backward(da, a, activation,
                                                          (z, center, inv_std, gamma, batch_statistics))
        np.testing.assert_allclose(dbeta, dy.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(dgamma, (dy * x_hat).sum(axis=0), rtol=1e-12)
        m = z.shape[0]
        expected = (gamma * inv_std / m * (m * dy - dbeta - x_hat * dgamma) if batch_statistics
                    else dy * gamma * inv_std)
        np.testing.assert_allclose(dz, expected, rtol=1e-10, atol=1e-12)
