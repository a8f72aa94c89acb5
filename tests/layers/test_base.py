"""The layer contract every layer keeps, in the base class (:mod:`minicnn.layers.base`): what the hooks
return is checked naming the layer, inference keeps no cache, bad input and bad arguments get clear errors.

That each layer's backward keeps the contract (a new ``dx``, ``dout`` and the weights left alone, one
gradient per parameter) is the spec's ``check_contract``, run on every entry of ``spec.py``."""

import numpy as np
import pytest
from example_models import every_layer_model, tiny_model

from minicnn import Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D

# --------------------------------------------------------------------------- the layer contract


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
    (lambda: Activation("gelu"), "unknown activation 'gelu'"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_count_weights_counts_what_build_creates_without_building():
    model = every_layer_model()
    tiny = tiny_model()
    layers = [*model.layers, *tiny.layers]
    assert {type(layer).__name__ for layer in layers} >= {"Conv2D", "BatchNormalization", "Dense"}
    for layer in layers:
        fresh = type(layer)(**layer.get_config())
        assert fresh.count_weights(layer.input_shape) == layer.count_params() and not fresh.built
