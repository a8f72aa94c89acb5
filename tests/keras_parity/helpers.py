"""What the Keras parity tests share: small models converted with :func:`minicnn.keras_compat.to_keras`,
random batches, Keras' loss and gradients by ``tf.GradientTape``, and the bounds.

Every minicnn model here is converted with ``to_keras``, which copies the weights as they are;
that the layouts really agree (Conv2D kernels (KH, KW, C, F), Dense kernels (D, U), NHWC
flattening, TensorFlow's 'same' padding) is what the tests check. Everything is float32, as in
Keras. Importing this module skips the test module without TensorFlow:
``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest
from conftest import published_model

from minicnn import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
    Softmax,
    to_categorical,
)
from minicnn.gradcheck import relative_error

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')

OUTPUT_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4
BATCH = 8


def strided_9x7(seed: int = 0) -> Sequential:
    """Stride-2 'same' conv on odd sizes, a (2, 3) kernel with uneven 'same' pads, an overlapping pool."""
    return Sequential([
        Input((9, 7, 2)),
        Conv2D(4, 3, strides=2, padding="same", activation="relu", seed=seed),  # -> (5, 4, 4)
        Dropout(0.3, seed=seed + 1),
        Conv2D(6, (2, 3), padding="same", activation="relu", seed=seed + 2),  # pads (0, 1), (1, 1)
        MaxPool2D(2, strides=1),  # -> (4, 3, 6)
        Flatten(),
        Dense(5, activation="relu", seed=seed + 3),
        Dense(3, activation="softmax", seed=seed + 4),
    ])


def valid_odd(seed: int = 0) -> Sequential:
    """'valid' padding with stride 2 on 11x9 images, ReLU and Softmax as layers of their own."""
    return Sequential([
        Input((11, 9, 3)),
        Conv2D(5, (3, 2), strides=2, padding="valid", seed=seed),  # -> (5, 4, 5)
        ReLU(),
        MaxPool2D(3, strides=2),  # -> (2, 1, 5)
        Dropout(0.2, seed=seed + 1),
        Flatten(),
        Dense(4, seed=seed + 2),
        Softmax(),
    ])


def even_same_s2(seed: int = 0) -> Sequential:
    """Stride-2 'same' conv on even sizes: TensorFlow pads only the bottom and right, (0, 1)."""
    return Sequential([
        Input((8, 6, 1)),
        Conv2D(3, 3, strides=2, padding="same", activation="relu", seed=seed),  # -> (4, 3, 3)
        MaxPool2D(2),  # -> (2, 1, 3)
        Dropout(0.5, seed=seed + 1),
        Flatten(),
        Dense(4, activation="softmax", seed=seed + 2),
    ])


ARCHITECTURES = {"published": published_model, "strided_9x7": strided_9x7, "valid_odd": valid_odd,
                 "even_same_s2": even_same_s2}


def bn_cnn(seed: int = 0) -> Sequential:
    """Conv (no bias, he_normal) -> BN -> ReLU -> average pool, a (3, 2) conv with strides (2, 1), tanh,
    LeakyReLU, global average pooling, sigmoid Dense, softmax as a layer."""
    return Sequential([
        Input((9, 8, 3)),
        Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer="he_normal", seed=seed),
        BatchNormalization(), ReLU(), AveragePooling2D(2),  # -> (4, 4, 4)
        Conv2D(5, (3, 2), strides=(2, 1), padding="same", activation="tanh", seed=seed + 1),  # -> (2, 4, 5)
        LeakyReLU(), GlobalAveragePooling2D(),
        Dense(6, activation="sigmoid", kernel_initializer="he_uniform", seed=seed + 2),
        Dense(3, seed=seed + 3), Activation("softmax"),
    ])


def bn_dense(seed: int = 0) -> Sequential:
    """BatchNormalization on vectors, with other momentum and epsilon, then sigmoid as a layer.

    (The Dense before BN has an activation: with batch statistics BN removes any constant shift, so a
    bias right before it has a zero gradient, and comparing round-off noise says nothing.)"""
    return Sequential([Input((5,)), Dense(8, activation="tanh", seed=seed),
                       BatchNormalization(momentum=0.9, epsilon=1e-5), Activation("sigmoid"),
                       Dense(4, activation="softmax", seed=seed + 1)])


def strided_avgpool(seed: int = 0) -> Sequential:
    """A (2, 3) kernel with strides (3, 2), sigmoid, then overlapping (2, 1) average pools, strides (1, 2)."""
    return Sequential([
        Input((10, 9, 2)),
        Conv2D(3, (2, 3), strides=(3, 2), activation="sigmoid", seed=seed),  # -> (3, 4, 3)
        AveragePooling2D((2, 1), strides=(1, 2)),  # -> (2, 2, 3)
        LeakyReLU(0.05), Flatten(), Dense(3, activation="softmax", seed=seed + 1),
    ])


NEW_LAYER_ARCHITECTURES = {"bn_cnn": bn_cnn, "bn_dense": bn_dense, "strided_avgpool": strided_avgpool}
"""Models with the layers that came after MNIST: BatchNormalization, average pooling, LeakyReLU, ..."""


def random_biases(model: Sequential, seed: int = 0) -> Sequential:
    """Give every bias random values (they start at 0), so bias mistakes show in the outputs."""
    rng = np.random.default_rng(seed)
    model.set_weights([w if w.ndim > 1 else rng.normal(0, 0.1, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def without_dropout(model: Sequential) -> Sequential:
    """The same model and weights minus its Dropout layers: training passes become deterministic."""
    kept = [layer for layer in model.layers if not isinstance(layer, Dropout)]
    twin = Sequential([Input(model.input_shape),
                       *[type(layer)(**layer.get_config()) for layer in kept]])
    twin.set_weights(model.get_weights())
    return twin


def batch(model: Sequential, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs (BATCH, *input_shape) of both signs and random one-hot targets, float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, *model.input_shape)).astype(np.float32)
    k = model.output_shape[-1]
    return x, to_categorical(rng.integers(0, k, BATCH), k)


def keras_loss(y: np.ndarray, probabilities) -> tf.Tensor:
    """Keras' mean categorical cross-entropy of softmax outputs against one-hot ``y``."""
    return tf.reduce_mean(keras.losses.categorical_crossentropy(y, probabilities))


def keras_gradients(keras_model, x: np.ndarray, y: np.ndarray, forward=None) -> list[np.ndarray]:
    """``[dL/dx, dL/dW...]`` by ``tf.GradientTape``, weights in ``get_weights`` order.

    ``forward(x)`` computes the outputs; by default the model in inference mode (no dropout).
    """
    forward = forward or (lambda inputs: keras_model(inputs, training=False))
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras_loss(y, forward(x))
    return [g.numpy() for g in tape.gradient(loss, [x, *keras_model.trainable_variables])]


def minicnn_gradients(model: Sequential, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """``[dL/dx, dL/dW...]`` from one training pass, weights in ``get_weights`` order."""
    _, _, dx = model.compute_loss_and_gradients(x, y)
    return [dx, *(grad for _, _, grad in model.parameters_and_gradients())]


def assert_gradients_close(mine: list[np.ndarray], reference: list[np.ndarray], names: list[str]) -> None:
    errors = {name: relative_error(a, b) for name, a, b in zip(names, mine, reference, strict=True)}
    assert max(errors.values()) <= GRADIENT_TOLERANCE, errors
    for a, b in zip(mine, reference, strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape


def gradient_names(model: Sequential) -> list[str]:
    return ["x", *(f"{layer.name}/{key}" for layer in model.layers for key in layer.params)]


def layer_configs(model: Sequential) -> list[tuple[str, dict]]:
    """Each layer's class and config, without the seeds of initial weights (Keras layers keep none)."""
    return [(type(layer).__name__, {key: value for key, value in layer.get_config().items()
                                    if not (key == "seed" and layer.params)}) for layer in model.layers]


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Means of every ``window`` consecutive values: shape (len(values) - window + 1,)."""
    return np.convolve(values, np.ones(window) / window, mode="valid")


def randomized(model: Sequential, seed: int = 0) -> Sequential:
    """Random biases, BN scales/shifts and moving statistics (variances > 0), so mistakes show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, BatchNormalization):
            c = layer.params["gamma"].shape
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
        elif "bias" in layer.params:
            layer.params["bias"] = rng.normal(0, 0.1, layer.params["bias"].shape).astype(np.float32)
    return model
