"""minicnn: a convolutional neural network framework from scratch, to learn and check backprop.

Keras' API over hand-written NumPy layers; Numba compiles the hot loops.
See ``docs/backprop.md`` for the derivation behind every backward pass and
``docs/architecture.md`` for the map of the modules.
"""

from minicnn import threads

threads.apply_defaults()  # before NumPy loads OpenBLAS, if it has not yet

# isort: split
from minicnn import kernels  # noqa: E402
from minicnn.layers import *  # noqa: E402, F403  (every layer class, see minicnn.layers)
from minicnn.layers import __all__ as _layer_names  # noqa: E402
from minicnn.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy, to_categorical  # noqa: E402
from minicnn.model import History, Sequential, load_model  # noqa: E402
from minicnn.optimizers import SGD, Adam  # noqa: E402
from minicnn.seeding import set_random_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    *_layer_names, "SGD", "Adam", "CategoricalCrossentropy", "History", "Sequential",
    "SparseCategoricalCrossentropy", "kernels", "load_model", "set_random_seed", "to_categorical",
]
