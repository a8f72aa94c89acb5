"""Small models, and data for them, that the tests of minicnn.models, minicnn.trainers and
minicnn.saving build."""

import functools

import numpy as np
from sklearn.datasets import load_digits

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
    Sequential,
)


def small_digits_model(seed=0):
    return Sequential([
        Input((8, 8, 1)),
        Conv2D(8, 3, padding="same", activation="relu", seed=seed),
        MaxPool2D(2),
        Dropout(0.1, seed=seed),
        Flatten(),
        Dense(32, activation="relu", seed=seed),
        Dense(10, activation="softmax", seed=seed),
    ])


@functools.cache
def digits():
    """scikit-learn's digits for :func:`small_digits_model`: ``x, y`` (1500 samples), ``x_val, y_val``."""
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return x[:1500], data.target[:1500], x[1500:], data.target[1500:]


def tiny_model(seed=0, last_activation="softmax"):
    return Sequential([Input((6, 6, 2)), Conv2D(3, 3, padding="same", activation="relu", seed=seed),
                       MaxPool2D(2), Flatten(), Dense(4, activation=last_activation, seed=seed + 1)])


def tiny_data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 2)).astype(np.float32), rng.integers(0, 4, n)


def every_layer_model(seed: int = 0) -> Sequential:
    return Sequential([
        Conv2D(4, 3, strides=(1, 2), padding="same", use_bias=False, kernel_initializer="he_normal",
               seed=seed, input_shape=(8, 8, 3)),
        BatchNormalization(), LeakyReLU(0.1), AveragePooling2D(2),
        Conv2D(6, (2, 1), activation="relu", kernel_initializer="he_uniform", seed=seed + 1),
        MaxPool2D(1), Dropout(0.2, seed=seed + 2), Activation("tanh"),
        GlobalAveragePooling2D(), Dense(5, activation="sigmoid", seed=seed + 3), Dense(3, seed=seed + 4),
        Activation("softmax"),
    ])


def every_layer_data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, n)
