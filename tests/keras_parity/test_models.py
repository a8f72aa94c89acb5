"""Whole models: with the same weights, minicnn and Keras compute the same outputs, loss and gradients.

The MNIST-like models (the published one, and small variants with stride 2, 'valid' padding,
non-square kernels, overlapping pools and odd image sizes, ``ARCHITECTURES``) and the models
with the later layers (BatchNormalization, AveragePooling2D, GlobalAveragePooling2D,
Activation, LeakyReLU, sigmoid, tanh, Conv2D without bias / with other initialisers / unequal
kernel sizes and strides, ``NEW_LAYER_ARCHITECTURES``), float32 as in Keras, in both implementations
(the fast one fuses Conv2D -> MaxPooling2D -> Dropout into one step; the NumPy one does not).
The bounds:

- forward: softmax outputs within 1e-5 (measured <= 1.2e-7), loss within 1e-5 (measured <= 6e-8);
- backward: gradients of the loss w.r.t. every weight and the input against
  ``tf.GradientTape`` (BatchNormalization in training mode), relative error
  ``||a - b|| / (||a|| + ||b||)`` <= 1e-4 (measured <= 5e-7: float32 sums in another order).

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import copy
import os

import numpy as np
import pytest

from minicnn import Dropout
from minicnn.keras_compat import to_keras

from .helpers import (
    ARCHITECTURES,
    BATCH,
    NEW_LAYER_ARCHITECTURES,
    OUTPUT_TOLERANCE,
    assert_gradients_close,
    batch,
    bn_dense,
    gradient_names,
    keras_gradients,
    keras_loss,
    minicnn_gradients,
    random_biases,
    randomized,
    without_dropout,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_forward_matches_keras(arch, implementation):
    """Inference (dropout off): the same softmax outputs and the same loss as Keras'."""
    model = random_biases(ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    x, y = batch(model)
    probabilities = model.predict(x, batch_size=BATCH)
    reference = keras_model(x, training=False).numpy()
    assert probabilities.dtype == np.float32
    assert np.abs(probabilities - reference).max() <= OUTPUT_TOLERANCE
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    loss = model.evaluate(x, y, batch_size=BATCH)
    assert abs(loss - float(keras_loss(y, reference))) <= OUTPUT_TOLERANCE


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gradients_match_keras_without_dropout(arch, implementation):
    model = without_dropout(random_biases(ARCHITECTURES[arch]()))
    x, y = batch(model)
    reference = keras_gradients(to_keras(model), x, y)
    assert_gradients_close(minicnn_gradients(model, x, y), reference, gradient_names(model))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gradients_match_keras_with_the_same_dropout_mask(arch, implementation):
    """Dropout on: Keras multiplies by the very masks minicnn's next training pass draws.

    A deep copy of each Dropout layer has the same generator state, so its
    ``draw_mask`` returns the mask the training pass will use (scaled by 1 / (1 - rate)).
    """
    model = random_biases(ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    x, y = batch(model)
    masks = {layer.name: copy.deepcopy(layer).draw_mask((BATCH, *layer.input_shape), np.float32)
             for layer in model.layers if isinstance(layer, Dropout)}
    assert all((m == 0).any() and (m > 0).any() for m in masks.values())

    def forward(h):
        for layer in keras_model.layers:
            h = h * masks[layer.name] if layer.name in masks else layer(h)
        return h

    reference = keras_gradients(keras_model, x, y, forward)
    assert_gradients_close(minicnn_gradients(model, x, y), reference, gradient_names(model))


@pytest.mark.parametrize("arch", NEW_LAYER_ARCHITECTURES)
def test_inference_matches_keras(arch, implementation):
    """Inference: BN with the moving statistics. Measured: outputs <= 9e-8, loss <= 1.2e-7."""
    model = randomized(NEW_LAYER_ARCHITECTURES[arch]())
    x, y = batch(model)
    reference = to_keras(model)(x, training=False).numpy()
    assert np.abs(model.predict(x, batch_size=BATCH) - reference).max() <= OUTPUT_TOLERANCE
    model.compile("adam", loss="categorical_crossentropy")
    assert abs(model.evaluate(x, y, batch_size=BATCH) - float(keras_loss(y, reference))) <= OUTPUT_TOLERANCE


@pytest.mark.parametrize("arch", NEW_LAYER_ARCHITECTURES)
def test_training_forward_and_gradients_match_keras(arch, implementation):
    """Training mode (BN on batch statistics): gradients of the loss w.r.t. the input and every
    trainable weight, against tf.GradientTape. Measured: relative error <= 2.1e-7."""
    model = randomized(NEW_LAYER_ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    x, y = batch(model)
    reference = keras_gradients(keras_model, x, y, lambda h: keras_model(h, training=True))
    assert_gradients_close(minicnn_gradients(model, x, y), reference, gradient_names(model))


def test_frozen_batchnorm_runs_in_inference_mode_like_keras(implementation):
    model = randomized(bn_dense())
    model.get_layer("batch_normalization").trainable = False
    keras_model = to_keras(model)
    x, y = batch(model)
    reference = keras_gradients(keras_model, x, y, lambda h: keras_model(h, training=True))
    names = ["x", *(f"{layer.name}/{key}" for layer in model.layers if layer.trainable
                    for key in layer.params)]
    assert_gradients_close(minicnn_gradients(model, x, y), reference, names)
