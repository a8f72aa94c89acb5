"""The fused Conv2D -> MaxPooling2D -> Dropout step computes what the layers compute one by one."""

import copy

import numpy as np
import pytest
from conftest import published_model
from hypothesis import given
from hypothesis import strategies as st

from minicnn import Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D, Sequential, fused, kernels

geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(4, 10),  # H
    st.integers(4, 10),  # W
    st.integers(1, 5),  # C
    st.integers(1, 6),  # F
    st.integers(1, 3),  # kernel size
    st.integers(1, 2),  # conv stride
    st.booleans(),  # same padding
    st.integers(1, 3),  # pool size
    st.integers(1, 3),  # pool stride
)


def make_case(case, dtype=np.float64):
    n, h, w, c, f, k, stride, same, pool, pool_stride = case
    conv = Conv2D(f, k, strides=stride, padding="same" if same else "valid")
    conv.build((h, w, c))
    oh, ow, _ = conv.output_shape
    if pool > min(oh, ow):
        return None
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    W = rng.standard_normal((k, k, c, f)).astype(dtype)
    return x, W, stride, conv._pads(h, w), pool, pool_stride


@given(geometry)
def test_direct_conv_pool_forward_matches_reference(case):
    made = make_case(case)
    if made is None:
        return
    pooled_ref, argmax_ref = kernels.conv_pool_forward_reference(*made)
    pooled, argmax = kernels.conv_pool_forward_numba(*made)
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


@given(geometry, st.booleans())
def test_pooled_conv_backward_matches_reference(case, input_gradient):
    made = make_case(case)
    if made is None:
        return
    x, W, stride, pads, pool, pool_stride = made
    _, argmax = kernels.conv_pool_forward_reference(*made)
    d = np.random.default_rng(7).standard_normal(argmax.shape)
    dW_ref, dx_ref = kernels.pooled_conv_backward_reference(d, argmax, *made, input_gradient)
    dW, dx = kernels.pooled_conv_backward_numba(d, argmax, *made, input_gradient)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    if input_gradient:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None and dx_ref is None


@pytest.mark.parametrize("channels", [1, 3, 8])  # windows of 9 and 27 (small-window kernel), 72 values
def test_both_pooled_conv_backward_kernels_match_reference(channels):
    assert (9 * channels <= kernels.DIRECT_MAX_WINDOW) == (channels < 8)
    made = make_case((3, 9, 8, channels, 5, 3, 1, True, 2, 2))
    _, argmax = kernels.conv_pool_forward_reference(*made)
    d = np.random.default_rng(3).standard_normal(argmax.shape)
    dW_ref, dx_ref = kernels.pooled_conv_backward_reference(d, argmax, *made)
    dW, dx = kernels.pooled_conv_backward_numba(d, argmax, *made)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_kernels_match_reference(dtype):
    rng = np.random.default_rng(0)
    pooled = rng.standard_normal((4, 5, 5, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    mask = ((rng.random(pooled.shape) > 0.3) / 0.7).astype(dtype)
    out, a = kernels.bias_relu_dropout_numba(pooled, b, mask)
    out_ref, a_ref = kernels.bias_relu_dropout_reference(pooled, b, mask)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(a, a_ref)
    dout = rng.standard_normal(pooled.shape).astype(dtype)
    np.testing.assert_array_equal(kernels.relu_dropout_backward_numba(dout, a, mask),
                                  kernels.relu_dropout_backward_reference(dout, a, mask))


def test_plan_fuses_the_published_blocks_only():
    model = published_model()
    steps = fused.plan(model.layers, input_gradient=False)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["ConvPoolBlock", "ConvPoolBlock", "Flatten", "Dense", "Dropout", "Dense"]
    assert steps[0].input_gradient is False and steps[1].input_gradient is True
    assert [len(s.layers) for s in steps[:2]] == [3, 3]
    linear_conv = Sequential([Input((6, 6, 1)), Conv2D(2, 3), MaxPool2D(2), Flatten()])
    assert [type(s).__name__ for s in fused.plan(linear_conv.layers)] == [
        "Conv2D", "MaxPooling2D", "Flatten"]  # no ReLU: not the fused pattern


def run_training_step(model, x, y, backend):
    """Loss, logits, dx and every gradient of one training step with the given kernels."""
    previous = kernels.get_backend()
    kernels.set_backend(backend)
    try:
        loss, z, dx = model.compute_loss_and_gradients(x, y)
    finally:
        kernels.set_backend(previous)
    return loss, z, dx, {name: g for name, _, g in model.parameters_and_gradients()}


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_fused_model_step_equals_layer_by_layer(dtype, tol):
    """Same weights, same dropout masks: the fused (Numba) and layer-by-layer (NumPy) paths agree."""
    rng = np.random.default_rng(0)
    x = rng.random((6, 28, 28, 1)).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 6)]
    model = published_model().astype(dtype)
    twin = copy.deepcopy(model)  # the same dropout generator states
    fast = run_training_step(model, x, y, "numba")
    slow = run_training_step(twin, x, y, "numpy")
    assert fast[0] == pytest.approx(slow[0], rel=tol)
    for a, b in zip(fast[1:3], slow[1:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    assert fast[3].keys() == slow[3].keys()
    for name in fast[3]:
        g_fast, g_slow = fast[3][name], slow[3][name]
        assert g_fast.dtype == dtype, name
        np.testing.assert_allclose(g_fast, g_slow, rtol=tol, atol=tol * np.abs(g_slow).max(), err_msg=name)


def test_fused_inference_equals_layer_by_layer():
    model = Sequential([Input((9, 7, 2)), Conv2D(3, 3, padding="same", activation="relu", seed=0),
                        MaxPool2D(2), Dropout(0.5), Flatten(), Dense(4, activation="softmax", seed=1)])
    x = np.random.default_rng(1).random((5, 9, 7, 2)).astype(np.float32)
    fast = model.predict(x)
    kernels.set_backend("numpy")
    try:
        slow = model.predict(x)
    finally:
        kernels.set_backend("numba")
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-7)


def test_first_fused_step_skips_the_input_gradient_only_in_training():
    model = published_model()
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 2]]
    assert model.compute_loss_and_gradients(x, y, input_gradient=False)[2] is None
    assert model.compute_loss_and_gradients(x, y)[2].shape == x.shape
