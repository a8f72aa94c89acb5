"""examples/cifar10_cnn.py run by Keras itself, for a side-by-side with benchmarks/compare.py.

The flags, data, protocol and ``results.json`` are the example's (:mod:`minicnn.experiments.cifar10`):
the same CNN (converted with :func:`minicnn.keras_compat.to_keras`, so the same initial weights),
Adam (lr 0.001), sparse categorical cross-entropy, the last 10% of the training images for
validation, and Keras' own EarlyStopping, ReduceLROnPlateau, ModelCheckpoint
(``best_model.keras``) and CSVLogger with the example's settings.
``keras.utils.set_random_seed`` seeds Keras' shuffling and dropout.

    pip install -e ".[keras]"
    python examples/cifar10_cnn.py --quick --out runs/cifar-minicnn
    python benchmarks/keras_cifar10.py --quick --out runs/cifar-keras
    python benchmarks/compare.py runs/cifar-minicnn/results.json runs/cifar-keras/results.json
"""

from __future__ import annotations

import time
from collections.abc import Sequence

# TensorFlow loads its libraries before minicnn sets its thread defaults (minicnn.threads).
import keras
import tensorflow as tf

import minicnn
from minicnn.experiments import cifar10
from minicnn.keras_compat import to_keras


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the example's protocol with Keras and command-line ``argv``; returns its results.json."""
    args = cifar10.parse_args(argv, __doc__.split("\n\n")[0])
    started = time.perf_counter()
    data = cifar10.load_data(args)
    args.out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    model = to_keras(cifar10.build_model(args.seed))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=cifar10.LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"KERAS: Keras {keras.__version__} on TensorFlow {tf.__version__}")
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "minicnn": minicnn.__version__}
    return cifar10.train_and_score(model, data, args,
                                   cifar10.training_callbacks(keras.callbacks, args.out, "best_model.keras"),
                                   "keras", versions, started)


if __name__ == "__main__":
    main()
