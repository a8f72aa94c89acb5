"""The published MNIST k-fold experiment run by Keras itself: the baseline minicnn is measured against.

The protocol, data, flags and ``results.json`` schema are those of
``examples/mnist_kfold.py``, shared through :mod:`minicnn.experiments` rather than
copied: all 70,000 digits (training images, then test images) from the same files
(``minicnn.datasets``, ``MINICNN_DATA`` or ``--data-dir``), an unshuffled
KFold(5) with a fresh model per fold, Adam (lr 0.001), batch 128, 10 epochs,
validation on the held-out fold every epoch, then a final model trained on the
60,000 training images and scored once on the 10,000 test images. The folds
run through :func:`minicnn.experiments.crossval.cross_validate`, which only calls Keras'
``fit`` and ``evaluate``.

Each model is the published CNN converted with :func:`minicnn.keras_compat.to_keras`,
so it has the very architecture and initial weights of the minicnn model with the
same seed; ``keras.utils.set_random_seed`` seeds Keras' shuffling and dropout.

    pip install -e ".[keras]"
    python benchmarks/keras_baseline.py --out runs/keras          # the full protocol
    python benchmarks/keras_baseline.py --quick --out runs/keras-quick
    python benchmarks/compare.py runs/minicnn/results.json runs/keras/results.json

Writes ``fold_<k>.json`` as each fold ends and ``results.json`` to ``--out``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

# TensorFlow loads its libraries before minicnn sets its thread defaults (minicnn.threads).
import keras
import tensorflow as tf

import minicnn
from minicnn.experiments import cli, protocol, rundir
from minicnn.experiments.crossval import cross_validate, fit_and_test
from minicnn.experiments.published_model import mnist_cnn
from minicnn.experiments.results import build_results, write_results
from minicnn.keras_compat import to_keras


def build_model(input_shape: tuple[int, int, int], num_classes: int, seed: int):
    """A fresh Keras published CNN compiled as in the experiment, every random draw seeded by ``seed``."""
    keras.utils.set_random_seed(seed)
    model = to_keras(mnist_cnn(input_shape, num_classes, seed=seed))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=protocol.LEARNING_RATE),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the experiment with Keras and command-line ``argv``; returns what it writes to results.json."""
    parser = cli.protocol_parser(__doc__.split("\n\n")[0])
    args = cli.check_args(parser, parser.parse_args(argv))
    started = time.perf_counter()
    data = cli.load_run_data(args)
    input_shape = data.x_cv.shape[1:]
    record = rundir.run_record(cli.config(args, data), data.sha256())
    versions = _versions()
    with rundir.RunLock(args.out):
        print(f"KERAS BASELINE: Keras {versions['keras']} on TensorFlow {versions['tensorflow']}")
        cli.print_header(args, data, mnist_cnn(input_shape, data.num_classes).count_params())
        def model_fn(fold_index: int):
            return build_model(input_shape, data.num_classes, protocol.fold_seed(args.seed, fold_index))

        cv = cross_validate(model_fn, data.x_cv, minicnn.to_categorical(data.y_cv, data.num_classes),
                            n_splits=args.folds, epochs=args.epochs, batch_size=args.batch_size,
                            out_dir=args.out, verbose=args.verbose, record=record)

        print(f"\nFinal model: training on {len(data.x_train):,} images, "
              f"then testing on {len(data.x_test):,}")
        model = build_model(input_shape, data.num_classes, protocol.final_seed(args.seed))
        _, test = fit_and_test(model, data.x_train, minicnn.to_categorical(data.y_train, data.num_classes),
                               data.x_test, minicnn.to_categorical(data.y_test, data.num_classes),
                               epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose)

        results = build_results(framework="keras", dataset=data.name, versions=versions,
                                config=record["config"], cv=cv, test=test,
                                total_seconds=time.perf_counter() - started)
        write_results(args.out / "results.json", results)
        cli.print_summary(cv, test, results["total_seconds"], args.out)
    return results


def _versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "minicnn": minicnn.__version__}


if __name__ == "__main__":
    main()
