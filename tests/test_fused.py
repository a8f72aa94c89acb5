"""The fused Conv2D -> MaxPooling2D -> Dropout step computes what the layers compute one by one."""

import copy

import numpy as np
import pytest
from conftest import published_model
from hypothesis import given
from hypothesis import strategies as st

from minicnn import Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D, Sequential, fused, implementation
from minicnn.fused import conv_pool_kernels as fast
from minicnn.kernels.im2col import col2im_reference, im2col_reference
from minicnn.kernels.maxpool import maxpool_backward_reference, maxpool_forward_reference
from minicnn.layers.base import Step

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
    return x, W, stride, conv.compute_pads(h, w), pool, pool_stride


def conv_pool_forward_by_definition(x, W, stride, pads, pool, pool_stride):
    """``maxpool(im2col(x) @ W)`` with the reference kernels: what the fused forward must compute."""
    kh, kw, c, f = W.shape
    cols = im2col_reference(x, kh, kw, stride, pads)
    xw = cols.reshape(-1, kh * kw * c) @ W.reshape(-1, f)
    return maxpool_forward_reference(xw.reshape(*cols.shape[:3], f), pool, pool_stride)


def conv_pool_backward_by_definition(d, argmax, x, W, stride, pads, pool, pool_stride, input_gradient=True):
    """MaxPooling2D's then Conv2D's backward with the reference kernels: ``(dW, dx)``."""
    kh, kw, c, f = W.shape
    cols = im2col_reference(x, kh, kw, stride, pads)
    dz = maxpool_backward_reference(d, argmax, (*cols.shape[:3], f), pool, pool_stride).reshape(-1, f)
    dW = (cols.reshape(dz.shape[0], -1).T @ dz).reshape(W.shape)
    if not input_gradient:
        return dW, None
    return dW, col2im_reference((dz @ W.reshape(-1, f).T).reshape(cols.shape), x.shape, stride, pads)


@given(geometry)
def test_conv_pool_forward_matches_the_definition(case):
    made = make_case(case)
    if made is None:
        return
    assert_forward_matches_definition(fast.conv_pool_forward_numba(*made), made)


def assert_forward_matches_definition(result, made):
    """``result = (pooled, argmax)`` for the case ``made``: maxima to 1e-10 (float64), winners exactly."""
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(*made)
    pooled, argmax = result
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


@given(geometry, st.booleans())
def test_conv_pool_backward_matches_the_layers_backward(case, input_gradient):
    made = make_case(case)
    if made is None:
        return
    x, W, stride, pads, pool, pool_stride = made
    _, argmax = conv_pool_forward_by_definition(*made)
    d = np.random.default_rng(7).standard_normal(argmax.shape)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made, input_gradient)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    if input_gradient:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None and dx_ref is None


@pytest.mark.parametrize("channels", [1, 3, 8])  # windows of 9 and 27 (small-window kernel), 72 values
def test_small_and_large_window_kernels_match_the_definition(channels):
    assert (9 * channels <= fast.SMALL_WINDOW) == (channels < 8)
    made = make_case((3, 9, 8, channels, 5, 3, 1, True, 2, 2))
    _, argmax = conv_pool_forward_by_definition(*made)
    d = np.random.default_rng(3).standard_normal(argmax.shape)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


def integer_valued(made):
    """The case with small integers as inputs and weights: sums are exact in float64, so maxima tie."""
    x, W, *rest = made
    return (np.round(x * 1.5), np.round(W), *rest)


# (N, H, W, C, F, kernel, stride, same, pool, pool_stride) for the small-window kernels: phase
# planes with STEP = stride * pool_stride from 1 to 6, taps padded to multiples of 3 (1, 4, 18
# taps) or not (9, 27), filters padded to multiples of 4 or not.
SMALL_WINDOW_CASES = [
    (3, 28, 28, 1, 32, 3, 1, True, 2, 2),  # the MNIST model's first convolution
    (2, 9, 7, 3, 5, 3, 1, True, 2, 2),  # 3 channels, odd sizes
    (2, 11, 9, 3, 6, 3, 2, True, 2, 2),  # stride 2
    (2, 10, 9, 1, 7, 2, 2, False, 3, 3),  # 2x2 kernel, STEP 6
    (2, 9, 10, 2, 3, 3, 1, False, 3, 1),  # overlapping pools
    (1, 6, 7, 1, 4, 1, 1, False, 2, 3),  # 1x1 kernel, pools with gaps between them
]


def exact_small_window_case(case, dtype):
    """An integer-valued case (exact sums in float32 and float64, so maxima tie) in ``dtype``."""
    x, W, *rest = integer_valued(make_case(case))
    assert W[..., 0].size <= fast.SMALL_WINDOW
    return (x.astype(dtype), W.astype(dtype), *rest)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL_WINDOW_CASES)
def test_small_window_forward_matches_the_definition_ties_included(case, dtype):
    made = exact_small_window_case(case, dtype)
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(*made)
    pooled, argmax = fast.conv_pool_forward_numba(*made)
    assert pooled.dtype == dtype
    np.testing.assert_array_equal(pooled, pooled_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_small_window_cases_have_ties():
    x, W, stride, pads, pool, pool_stride = exact_small_window_case(SMALL_WINDOW_CASES[0], np.float64)
    cols = im2col_reference(x, 3, 3, stride, pads)
    xw = cols.reshape(-1, 9) @ W.reshape(9, -1)  # (N*28*28, F), rows (n, i, j)
    windows = xw.reshape(3, 14, 2, 14, 2, -1)
    tied = (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)) > 1
    assert tied.mean() > 0.05  # so that "first maximum wins" is tested


@pytest.mark.parametrize("input_gradient", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL_WINDOW_CASES)
def test_small_window_backward_matches_the_layers_backward(case, dtype, input_gradient):
    made = exact_small_window_case(case, dtype)
    _, argmax = conv_pool_forward_by_definition(*made)
    rng = np.random.default_rng(5)
    d = (rng.integers(-3, 4, argmax.shape) * (rng.random(argmax.shape) < 0.7)).astype(dtype)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made, input_gradient)
    assert dW.dtype == dtype
    np.testing.assert_array_equal(dW, dW_ref)  # integer sums: exact in any order
    if input_gradient:
        np.testing.assert_array_equal(dx, dx_ref)
    else:
        assert dx is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_kernels_match_relu_and_dropout(dtype):
    rng = np.random.default_rng(0)
    pooled = rng.standard_normal((4, 5, 5, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    mask = ((rng.random(pooled.shape) > 0.3) / 0.7).astype(dtype)
    out, a = fast.bias_relu_dropout_numba(pooled, b, mask)
    np.testing.assert_array_equal(a, np.maximum(pooled + b, 0))
    np.testing.assert_array_equal(out, np.maximum(pooled + b, 0) * mask)
    dout = rng.standard_normal(pooled.shape).astype(dtype)
    np.testing.assert_array_equal(fast.relu_dropout_backward_numba(dout, a, mask), dout * mask * (a > 0))


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


def run_training_step(model, x, y, name):
    """Loss, logits, dx and every gradient of one training step in implementation ``name``."""
    with implementation.use(name):
        loss, z, dx = model.compute_loss_and_gradients(x, y)
    return loss, z, dx, {name: g for name, _, g in model.parameters_and_gradients()}


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_fused_model_step_equals_layer_by_layer(dtype, tol):
    """Same weights, same dropout masks: the fast (fused, Numba) and reference (layer by layer) agree."""
    rng = np.random.default_rng(0)
    x = rng.random((6, 28, 28, 1)).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 6)]
    model = published_model().astype(dtype)
    twin = copy.deepcopy(model)  # the same dropout generator states
    quick = run_training_step(model, x, y, "fast")
    slow = run_training_step(twin, x, y, "reference")
    assert quick[0] == pytest.approx(slow[0], rel=tol)
    for a, b in zip(quick[1:3], slow[1:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    assert quick[3].keys() == slow[3].keys()
    for name in quick[3]:
        g_fast, g_slow = quick[3][name], slow[3][name]
        assert g_fast.dtype == dtype, name
        np.testing.assert_allclose(g_fast, g_slow, rtol=tol, atol=tol * np.abs(g_slow).max(), err_msg=name)


def test_fused_inference_equals_layer_by_layer():
    model = Sequential([Input((9, 7, 2)), Conv2D(3, 3, padding="same", activation="relu", seed=0),
                        MaxPool2D(2), Dropout(0.5), Flatten(), Dense(4, activation="softmax", seed=1)])
    x = np.random.default_rng(1).random((5, 9, 7, 2)).astype(np.float32)
    quick = model.predict(x)
    with implementation.use("reference"):
        slow = model.predict(x)
    np.testing.assert_allclose(quick, slow, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", implementation.IMPLEMENTATIONS)
def test_a_layer_by_layer_backward_chain_works_after_a_fused_forward(name):
    """After a forward through the model's steps, each layer's own backward gives the step's gradients."""
    rng = np.random.default_rng(2)
    model = published_model().astype(np.float64)
    twin = copy.deepcopy(model)  # the same dropout generator states
    x = rng.random((3, 28, 28, 1))
    steps = model.steps()
    with implementation.use(name):
        out = x
        for step in steps:
            out = step.forward(out, training=True)
        g = rng.standard_normal(out.shape)
        d_steps = g
        for step in reversed(steps[2:]):  # the unfused tail, as the steps ran it
            d_steps = step.backward(d_steps)
        block = steps[1]
        d_layers = d_steps
        for layer in reversed(block.layers):
            d_layers = layer.backward(d_layers)
        grads_by_layers = {k: v.copy() for k, v in block.conv.grads.items()}
        d_block = block.backward(d_steps) if name == "reference" else None
    with implementation.use("reference"):
        out = x
        for layer in twin.layers:
            out = layer.forward(out, training=True)
        d = g
        for layer in reversed(twin.layers[3:]):
            d = layer.backward(d)
    np.testing.assert_allclose(d_layers, d, rtol=1e-10, atol=1e-12)
    for key in ("kernel", "bias"):
        np.testing.assert_allclose(grads_by_layers[key], twin.layers[3].grads[key], rtol=1e-10, atol=1e-12)
    if d_block is not None:
        np.testing.assert_allclose(d_block, d, rtol=1e-10, atol=1e-12)


def test_first_fused_step_skips_the_input_gradient_only_in_training():
    model = published_model()
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 2]]
    assert model.compute_loss_and_gradients(x, y, input_gradient=False)[2] is None
    assert model.compute_loss_and_gradients(x, y)[2].shape == x.shape


def test_a_fused_step_keeps_the_layer_contract(implementation):
    """A fused step is a Step like a layer: name, label, params and grads under the model's names,
    forward and backward with the same checks; its gradients end up in its layers."""
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3, activation="relu", seed=0), MaxPool2D(2),
                        Dropout(0.5, seed=1), Flatten(), Dense(3, seed=2)])
    steps = model.steps()
    assert all(isinstance(step, Step) for step in steps)
    block, conv = steps[0], model.layers[0]
    assert block.layers == model.layers[:3] and steps[1].layers == [steps[1]]
    assert block.label() == 'fused step "conv2d+max_pooling2d+dropout"'
    assert {k: id(p) for k, p in block.params.items()} == {"conv2d/kernel": id(conv.params["kernel"]),
                                                           "conv2d/bias": id(conv.params["bias"])}
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype(np.float32)
    out = block.forward(x, training=True)
    with pytest.raises(ValueError, match=r'fused step "conv2d\+max_pooling2d\+dropout": expected an output '
                                         r"gradient of shape \(2, 2, 2, 2\); got \(2, 8\)"):
        block.backward(out.reshape(2, -1))
    block.backward(np.ones_like(out))
    assert set(block.grads) == {"conv2d/kernel", "conv2d/bias"}
    for key in ("kernel", "bias"):
        assert block.grads[f"conv2d/{key}"] is conv.grads[key]
        assert conv.grads[key].shape == conv.params[key].shape and np.abs(conv.grads[key]).sum() > 0
    with pytest.raises(TypeError, match=r'layer "conv2d" \(Conv2D\): expected a NumPy array'):
        block.forward(x.tolist())
