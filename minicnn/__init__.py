"""minicnn: a convolutional neural network framework from scratch, to learn and check backprop.

Keras' API over hand-written NumPy layers; Numba compiles the hot loops.
See ``docs/backprop.md`` for the derivation behind every backward pass.
"""

from minicnn import _numba_cache, _threads  # noqa: F401  (before NumPy/Numba start: see each)
from minicnn.layers import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPool2D,
    MaxPooling2D,
    ReLU,
    Softmax,
)
from minicnn.losses import to_categorical
from minicnn.model import History, Sequential, load_model
from minicnn.optimizers import SGD, Adam
from minicnn.seeding import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "SGD", "Adam", "Conv2D", "Dense", "Dropout", "Flatten", "History", "Input", "MaxPool2D",
    "MaxPooling2D", "ReLU", "Sequential", "Softmax", "load_model", "set_random_seed",
    "to_categorical",
]
