"""A small modern CNN on CIFAR-10 with minicnn: batch normalisation, global average pooling, callbacks.

The model: three blocks of 3x3 convolutions without bias, each followed by BatchNormalization
and ReLU (32, 32 | 64, 64 | 128 filters, max-pooling and dropout between blocks), then
GlobalAveragePooling2D and a softmax Dense; He-normal initial kernels; Adam (lr 0.001),
sparse categorical cross-entropy on the integer labels.

Training holds out the last 10% of the training images for validation (``validation_split``,
as Keras), with the callbacks a Keras user reaches for: EarlyStopping on ``val_loss``
(patience 4, best weights restored), ReduceLROnPlateau (halving after 2 stalled epochs),
ModelCheckpoint (``best_model.npz``, best ``val_loss`` only) and CSVLogger (``training_log.csv``).
The restored best model is then scored once on the 10,000 test images.

``results.json`` follows :mod:`minicnn.experiments.results` with one "fold": the validation
split, then ``test``: the test set. ``benchmarks/keras_cifar10.py`` runs the same protocol with
Keras (same architecture and initial weights, via ``to_keras``), so the two compare with
``benchmarks/compare.py``.

    python examples/cifar10_cnn.py                 # CIFAR-10 (downloaded once, SHA-256 checked)
    python examples/cifar10_cnn.py --quick         # every step on 2,000 images, 3 epochs
    python examples/synthetic_cifar10.py runs/fake         # a tiny synthetic set, then:
    python examples/cifar10_cnn.py --quick --binary runs/fake

CIFAR-10 is read from ``--data-dir``, else ``$MINICNN_DATA/cifar10/``, else the cache
(``minicnn.datasets.load_cifar10``). ``--binary PATH`` reads any folder or archive in
CIFAR-10's binary format with only the format checked (a synthetic set, say).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import minicnn
from minicnn import Adam, callbacks
from minicnn.experiments import cli
from minicnn.experiments.cifar10 import (
    LEARNING_RATE,
    VALIDATION_SPLIT,
    build_model,
    load_data,
    parse_args,
    train_and_score,
    training_callbacks,
)
from minicnn.experiments.rundir import NonFiniteScoreError
from minicnn.saving import ModelFileError


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example with command-line ``argv``; returns what it writes to results.json.

    Every failure is one ``error:`` line (exit 1); Ctrl-C and SIGTERM stop it with one line
    (exit 130 and 143).
    """
    args = parse_args(argv, __doc__.split("\n\n")[0])
    started = time.perf_counter()
    with cli.one_line_failures((NonFiniteScoreError, FloatingPointError, ModelFileError)):
        data = load_data(args)
        args.out.mkdir(parents=True, exist_ok=True)
        model = build_model(args.seed)
        model.compile(optimizer=Adam(learning_rate=LEARNING_RATE), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        print(f"CIFAR-10 CNN: {len(data[0]):,} training images ({VALIDATION_SPLIT:.0%} held out for "
              f"validation), {len(data[2]):,} test images, up to {args.epochs} epochs of batch "
              f"{args.batch_size}")
        model.summary()
        minicnn.set_random_seed(args.seed)
        return train_and_score(model, data, args, training_callbacks(callbacks, args.out, "best_model.npz"),
                               "minicnn", {"minicnn": minicnn.__version__}, started)


if __name__ == "__main__":
    main()
