"""``to_keras`` and ``from_keras`` (:mod:`minicnn.keras_compat`): the same layers with the same weights,
there and back, a model written in Keras, and clear errors for what has no equivalent.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest

from minicnn import BatchNormalization, Dense, LeakyReLU, Sequential
from minicnn.keras_compat import from_keras, to_keras

from .helpers import (
    ARCHITECTURES,
    NEW_LAYER_ARCHITECTURES,
    OUTPUT_TOLERANCE,
    batch,
    layer_configs,
    random_biases,
    randomized,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


# ---------------------------------------------------------------------------------- MNIST-like models


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_to_keras_builds_the_same_layers_with_the_same_weights(arch):
    model = ARCHITECTURES[arch]()
    keras_model = to_keras(model)
    assert [layer.name for layer in keras_model.layers] == [layer.name for layer in model.layers]
    assert [tuple(layer.output.shape[1:]) for layer in keras_model.layers] == [
        layer.output_shape for layer in model.layers]
    assert keras_model.count_params() == model.count_params()
    for ours, theirs in zip(model.get_weights(), keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_from_keras_inverts_to_keras(arch):
    model = random_biases(ARCHITECTURES[arch]())
    back = from_keras(to_keras(model))
    assert back.input_shape == model.input_shape
    assert layer_configs(back) == layer_configs(model)
    for ours, theirs in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_weight_penalties_convert_both_ways():
    """A Keras model's regularizers become minicnn's, with their factors, and back; Keras computes the same
    penalty from them (its ``model.losses``)."""
    keras_model = keras.Sequential([
        keras.Input((5, 5, 1)),
        keras.layers.Conv2D(2, 3, kernel_regularizer=keras.regularizers.L2(0.3),
                            bias_regularizer=keras.regularizers.L1(0.25)),  # Keras keeps l1 in float32
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.L1L2(0.1, 0.2)),
    ])
    model = from_keras(keras_model)
    conv, _, dense = model.layers
    assert (repr(conv.kernel_regularizer), repr(conv.bias_regularizer)) == ("L2(l2=0.3)", "L1(l1=0.25)")
    assert repr(dense.kernel_regularizer) == "L1L2(l1=0.1, l2=0.2)" and dense.bias_regularizer is None
    keras_penalty = float(sum(keras_model.losses))
    assert abs(model.regularization_loss() - keras_penalty) <= OUTPUT_TOLERANCE * keras_penalty
    back = to_keras(model)
    assert layer_configs(from_keras(back)) == layer_configs(model)
    assert abs(float(sum(back.losses)) - keras_penalty) <= OUTPUT_TOLERANCE * keras_penalty


def test_from_keras_reproduces_a_model_written_in_keras():
    """The published model as a Keras user writes it, with Keras' own initial weights."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    keras_model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25), layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)), layers.Dropout(0.25), layers.Flatten(),
        layers.Dense(128, activation="relu"), layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])
    model = from_keras(keras_model)
    assert model.count_params() == 421_642
    x, _ = batch(model)
    diff = np.abs(model.predict(x) - keras_model(x, training=False).numpy()).max()
    assert diff <= OUTPUT_TOLERANCE


@pytest.mark.parametrize(("kind", "kwargs", "message"), [
    ("LayerNormalization", {}, r"'odd' \(LayerNormalization\): minicnn has no equivalent"),
    ("Conv2D", {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, r"'odd' \(Conv2D\): .*dilation_rate"),
    ("Conv2D", {"filters": 2, "kernel_size": 3, "activation": "gelu"}, r"'odd' \(Conv2D\): .*'gelu'"),
    ("MaxPooling2D", {"padding": "same"}, r"'odd' \(MaxPooling2D\): .*padding='valid'"),
    ("Dense", {"units": 2, "activity_regularizer": "l2"}, r"'odd' \(Dense\): minicnn has no activity_reg"),
    ("Dense", {"units": 2, "kernel_regularizer": keras.regularizers.OrthogonalRegularizer()},
     r"'odd' \(Dense\): .*no regularizer 'OrthogonalRegularizer'"),
])
def test_from_keras_names_what_it_cannot_convert(kind, kwargs, message):
    layer = getattr(keras.layers, kind)(name="odd", **kwargs)
    keras_model = keras.Sequential([keras.Input((6, 6, 1)), layer])
    with pytest.raises(ValueError, match=message):
        from_keras(keras_model)


def test_conversions_refuse_what_they_cannot_read():
    with pytest.raises(ValueError, match="to_keras: the model is not built yet"):
        to_keras(Sequential([Dense(2)]))
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(TypeError, match="from_keras: expected a keras.Sequential; got Functional"):
        from_keras(functional)


# ---------------------------------------------------------------------------------- the later layers


@pytest.mark.parametrize("arch", NEW_LAYER_ARCHITECTURES)
def test_new_layers_convert_to_keras_and_back(arch):
    model = randomized(NEW_LAYER_ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert [type(layer).__name__ for layer in keras_model.layers] == kinds
    assert [tuple(layer.output.shape[1:]) for layer in keras_model.layers] == [
        layer.output_shape for layer in model.layers]
    assert keras_model.count_params() == model.count_params()  # both count BN's moving statistics
    back = from_keras(keras_model)
    assert layer_configs(back) == layer_configs(model)
    for ours, theirs in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_keras_batchnorm_defaults_and_leaky_relu_slope_are_keras_3s():
    keras_bn, keras_leaky = keras.layers.BatchNormalization(), keras.layers.LeakyReLU()
    ours = BatchNormalization()
    assert (ours.momentum, ours.epsilon) == (keras_bn.momentum, keras_bn.epsilon)
    assert LeakyReLU().negative_slope == pytest.approx(keras_leaky.negative_slope)
