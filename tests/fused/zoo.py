"""The model zoo of issue 18, as the fused tests build it: the CNNs people bring to minicnn.

Each builder takes a seed and returns an uncompiled :class:`minicnn.Sequential`.
"""

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
    MaxPool2D,
    Sequential,
)
from minicnn.experiments.cifar10 import build_model as cifar10_cnn
from minicnn.experiments.published_model import mnist_cnn


def lenet5(seed: int = 0) -> Sequential:
    """LeNet-5 on 28x28 grey images: tanh, average pooling."""
    return Sequential([Input((28, 28, 1)),
                       Conv2D(6, 5, padding="same", activation="tanh", seed=seed), AveragePooling2D(2),
                       Conv2D(16, 5, activation="tanh", seed=seed + 1), AveragePooling2D(2), Flatten(),
                       Dense(120, activation="tanh", seed=seed + 2),
                       Dense(84, activation="tanh", seed=seed + 3),
                       Dense(10, activation="softmax", seed=seed + 4)], name="lenet5")


def vgg_style(seed: int = 0) -> Sequential:
    """conv-conv-pool three times on 32x32x3, then a Dense head."""
    layers: list = [Input((32, 32, 3))]
    for i, filters in enumerate((32, 64, 128)):
        layers += [Conv2D(filters, 3, padding="same", activation="relu", seed=seed + 2 * i),
                   Conv2D(filters, 3, padding="same", activation="relu", seed=seed + 2 * i + 1), MaxPool2D(2)]
    return Sequential([*layers, Flatten(), Dense(128, activation="relu", seed=seed + 6),
                       Dropout(0.5, seed=seed),
                       Dense(10, activation="softmax", seed=seed + 7)], name="vgg_style")


def all_convolutional(seed: int = 0) -> Sequential:
    """Downsampling by stride-2 convolutions, a 1x1 convolution to the classes, global average pooling."""
    return Sequential([Input((32, 32, 3)),
                       Conv2D(32, 3, padding="same", activation="relu", seed=seed),
                       Conv2D(32, 3, strides=2, padding="same", activation="relu", seed=seed + 1),
                       Conv2D(64, 3, padding="same", activation="relu", seed=seed + 2),
                       Conv2D(64, 3, strides=2, padding="same", activation="relu", seed=seed + 3),
                       Conv2D(10, 1, seed=seed + 4), GlobalAveragePooling2D(), Activation("softmax")],
                      name="all_convolutional")


def typical_user(seed: int = 0) -> Sequential:
    """What tutorials teach: Conv2D(relu) -> BatchNormalization -> MaxPool twice, Flatten, Dense, Dropout."""
    return Sequential([Input((28, 28, 1)),
                       Conv2D(32, 3, activation="relu", seed=seed), BatchNormalization(), MaxPool2D(2),
                       Conv2D(64, 3, activation="relu", seed=seed + 1), BatchNormalization(), MaxPool2D(2),
                       Flatten(), Dense(64, activation="relu", seed=seed + 2), Dropout(0.5, seed=seed),
                       Dense(10, activation="softmax", seed=seed + 3)], name="typical_user")


def seed_model(seed: int = 0) -> Sequential:
    """The published Keras MNIST CNN minicnn was first built around."""
    return mnist_cnn(seed=seed)


ZOO = {"seed_model": seed_model, "cifar10_cnn": cifar10_cnn, "lenet5": lenet5, "vgg_style": vgg_style,
       "all_convolutional": all_convolutional, "typical_user": typical_user}
