"""minicnn: a convolutional neural network framework from scratch, to learn and check backprop.

Keras' API over hand-written NumPy layers; Numba compiles the hot loops.
See ``docs/backprop.md`` for the derivation behind every backward pass and
``docs/architecture.md`` for the map of the modules.

Keras' namespaces are here under Keras' names, so ``import minicnn as keras`` runs Keras code
that stays within what minicnn has: ``keras.datasets.mnist.load_data()``, ``keras.utils``,
``keras.layers``, ``keras.losses``, ``keras.optimizers`` (with ``.schedules``),
``keras.metrics``, ``keras.callbacks``, ``keras.initializers``, ``keras.regularizers``, ``keras.activations``,
``keras.models``, ``keras.Input``, ``keras.Sequential``. What minicnn lacks (``keras.Model``,
``keras.ops``, ``keras.applications``, ...) raises :class:`minicnn.missing.MissingFeatureError`
saying what it offers instead (``docs/keras.md``, "Keras' namespaces").
"""

# ruff: noqa: E402  (the order of the first imports matters: see below)

from minicnn import threads

threads.apply_defaults()  # before NumPy loads OpenBLAS, if it has not yet (if it has, OpenBLAS is told)

# isort: split
from minicnn import _numba_cache  # noqa: F401  (a writable kernel cache, before any kernel compiles)

# isort: split
from minicnn import callbacks, implementation, kernels, metrics, optimizers, schedules
from minicnn.callbacks import History
from minicnn.layers import *  # noqa: F403  (every layer class, see minicnn.layers)
from minicnn.layers import __all__ as _layer_names
from minicnn.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy, to_categorical
from minicnn.models import Sequential, load_model, model_from_json
from minicnn.optimizers import SGD, Adam, RMSprop
from minicnn.seeding import set_random_seed

# isort: split
# Keras' namespaces (keras.datasets, keras.utils, ...) and top-level classes, for `import minicnn as keras`
from minicnn import activations, datasets, initializers, layers, losses, missing, models, regularizers, utils
from minicnn.losses import Loss
from minicnn.metrics import Metric
from minicnn.optimizers import Optimizer
from minicnn.regularizers import Regularizer

__version__ = "0.2.0"
"""The release; pyproject.toml reads it from here, and CHANGELOG.md has a section for it."""

__all__ = [
    *_layer_names, "SGD", "Adam", "RMSprop", "CategoricalCrossentropy", "History", "Sequential",
    "SparseCategoricalCrossentropy", "callbacks", "implementation", "kernels", "load_model", "metrics",
    "model_from_json", "optimizers", "schedules", "set_random_seed", "to_categorical",
    "Loss", "Metric", "Optimizer", "Regularizer", "activations", "datasets", "initializers", "layers",
    "losses", "models", "regularizers", "utils",
]

__getattr__ = missing.module_getattr(__name__)  # keras.Model, keras.ops, ...: see minicnn.missing
