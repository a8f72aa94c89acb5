"""Layers, one module each, every one with a hand-written forward and backward pass.

The contract all of them keep is in :mod:`minicnn.layers.base`. A new layer is one new
module here, registered with ``@LAYERS.register()`` (:mod:`minicnn.registry`), imported
below, plus its kernels, docs and tests. Keras' layers that minicnn lacks raise
:class:`~minicnn.missing.MissingFeatureError` naming the layers it has.
"""

from minicnn import missing
from minicnn.layers.activation import Activation, LeakyReLU, ReLU, Softmax
from minicnn.layers.average_pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalAvgPool2D,
)
from minicnn.layers.base import Layer
from minicnn.layers.batch_normalization import BatchNormalization
from minicnn.layers.conv2d import Conv2D
from minicnn.layers.dense import Dense
from minicnn.layers.dropout import Dropout
from minicnn.layers.flatten import Flatten
from minicnn.layers.input import Input
from minicnn.layers.pooling import MaxPool2D, MaxPooling2D

__all__ = [
    "Activation", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Conv2D", "Dense", "Dropout",
    "Flatten", "GlobalAveragePooling2D", "GlobalAvgPool2D", "Input", "Layer", "LeakyReLU", "MaxPool2D",
    "MaxPooling2D", "ReLU", "Softmax",
]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing
