"""The fused Conv2D -> MaxPooling2D -> Dropout step (:mod:`minicnn.fused.conv_pool`, found by
:func:`minicnn.fused.plan`) computes what the layers compute one by one."""

import copy

import numpy as np
import pytest
from conftest import published_model

from minicnn import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPool2D,
    Sequential,
    fused,
)
from minicnn.implementation import IMPLEMENTATIONS, use
from minicnn.layers.base import Step


def test_plan_fuses_the_published_blocks_only():
    model = published_model()
    steps = fused.plan(model.layers, input_gradient=False)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["ConvPoolBlock", "ConvPoolBlock", "Flatten", "Dense", "Dropout", "Dense"]
    assert steps[0].input_gradient is False and steps[1].input_gradient is True
    assert [len(s.layers) for s in steps[:2]] == [3, 3]
    linear_conv = Sequential([Input((6, 6, 1)), Conv2D(2, 3), MaxPool2D(2), Flatten()])
    assert [type(s).__name__ for s in fused.plan(linear_conv.layers)] == [
        "ConvBlock", "Flatten"]  # no ReLU: not ConvPoolBlock's pattern, the general step's


def run_training_step(model, x, y, name):
    """Loss, logits, dx and every gradient of one training step in implementation ``name``."""
    with use(name):
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
    with use("reference"):
        slow = model.predict(x)
    np.testing.assert_allclose(quick, slow, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_a_layer_by_layer_backward_chain_works_after_a_fused_forward(name):
    """After a forward through the model's steps, each layer's own backward gives the step's gradients."""
    rng = np.random.default_rng(2)
    model = published_model().astype(np.float64)
    twin = copy.deepcopy(model)  # the same dropout generator states
    x = rng.random((3, 28, 28, 1))
    steps = model.steps()
    with use(name):
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
    with use("reference"):
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


# --------------------------------------------------------------------------- what the general step takes


def test_conv_without_bias_or_with_unequal_strides_goes_to_the_general_step():
    def first_step(conv):
        model = Sequential([Input((8, 8, 1)), conv, MaxPool2D(2)])
        return model.steps()[0]

    assert isinstance(first_step(Conv2D(2, 3, activation="relu")), fused.ConvPoolBlock)
    assert isinstance(first_step(Conv2D(2, 3, activation="relu", use_bias=False)), fused.ConvBlock)
    assert isinstance(first_step(Conv2D(2, 3, strides=(1, 2), activation="relu")), fused.ConvBlock)
