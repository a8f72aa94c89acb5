"""The CIFAR-10 example's protocol, shared by ``examples/cifar10_cnn.py`` and its Keras twin
``benchmarks/keras_cifar10.py``: the flags, the data, the CNN, the callbacks and ``results.json``.

The model: three blocks of 3x3 convolutions without bias, each followed by BatchNormalization
and ReLU (32, 32 | 64, 64 | 128 filters, max-pooling and dropout between blocks), then
GlobalAveragePooling2D and a softmax Dense; He-normal initial kernels. Training holds out the
last :data:`VALIDATION_SPLIT` of the training images for validation, with EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint and CSVLogger taken from ``minicnn.callbacks`` or
``keras.callbacks`` (:func:`training_callbacks`); :func:`train_and_score` works for a minicnn
or a Keras model alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
    Sequential,
    datasets,
)
from minicnn.experiments.cli import VERBOSITY, check_new_out, verbosity
from minicnn.experiments.crossval import CrossValidationResult, FoldResult, HoldoutResult
from minicnn.experiments.results import build_results, write_results

FULL = {"epochs": 30, "limit": None}
QUICK = {"epochs": 3, "limit": 2000}
"""Settings of the full run and of ``--quick``; a flag given explicitly overrides either."""

LEARNING_RATE = 0.001
VALIDATION_SPLIT = 0.1
PATIENCE = 4


def parse_args(argv: Sequence[str] | None, description: str) -> argparse.Namespace:
    """The run's flags from command-line ``argv``, checked; ``description`` heads ``--help``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, help=f"most epochs to train ({FULL['epochs']}; "
                        f"{QUICK['epochs']} with --quick); EarlyStopping may stop sooner")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (64)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of initial weights, dropout and shuffling (0)")
    parser.add_argument("--limit", type=int, metavar="N", help="train on the first N training images and "
                        f"test on the first N//5 test images (all; {QUICK['limit']} with --quick)")
    parser.add_argument("--quick", action="store_true", help="every step on less data: "
                        + ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", metavar="DIR", help="a folder holding cifar-10-binary.tar.gz, "
                        "directly or in cifar10/ (see minicnn.datasets.load_cifar10)")
    source.add_argument("--binary", metavar="PATH", help="a folder or archive in CIFAR-10's binary format, "
                        "read with only its format checked (e.g. from examples/synthetic_cifar10.py)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory, new or empty "
                        "(runs/cifar10-<UTC time>/)")
    parser.add_argument("--verbose", type=verbosity, choices=VERBOSITY, default="auto",
                        help="0 silent, 1 progress bars and a line per epoch, 2 the line only, "
                        "auto (default) 1 on a terminal, else 2")
    args = parser.parse_args(argv)
    args.limit_given = args.limit is not None
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error(f"--epochs and --batch-size must be at least 1; got {args.epochs} and {args.batch_size}")
    if args.limit is not None and args.limit < 20:
        parser.error(f"--limit must be at least 20 (for validation and test images); got {args.limit}")
    if args.out is None:
        args.out = Path("runs") / datetime.now(timezone.utc).strftime("cifar10-%Y%m%dT%H%M%SZ")
    check_new_out(parser, args.out)
    return args


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test``: float32 NHWC images in [0, 1], integer labels (N,)."""
    try:
        if args.binary is not None:
            (x_train, y_train), (x_test, y_test) = datasets.load_cifar10_binary(args.binary)
        else:
            (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(args.data_dir)
    except datasets.DatasetError as exc:
        raise SystemExit(f"error: {exc}\nNo CIFAR-10 here? Point --data-dir at a folder holding "
                         "cifar-10-binary.tar.gz, or try the example offline on a synthetic set: "
                         "python examples/synthetic_cifar10.py DIR, then --binary DIR") from None
    if args.limit is not None and not args.limit_given:  # --quick on a set smaller than its limit: all of it
        args.limit = min(args.limit, len(x_train))
    if args.limit is not None:
        if args.limit > len(x_train):
            raise SystemExit(f"error: --limit {args.limit:,} is more than the {len(x_train):,} "
                             "training images")
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:max(args.limit // 5, 1)], y_test[:max(args.limit // 5, 1)]
    return (datasets.prepare_images(x_train), y_train.astype(np.int64),
            datasets.prepare_images(x_test), y_test.astype(np.int64))


def build_model(seed: int) -> Sequential:
    """The CNN, uncompiled, every initial weight drawn from ``seed``."""
    seeds = iter(np.random.SeedSequence(seed).generate_state(8))

    def conv(filters: int) -> list:
        return [Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                       seed=int(next(seeds))), BatchNormalization(), ReLU()]

    return Sequential([
        Input((32, 32, 3)),
        *conv(32), *conv(32), MaxPooling2D(2), Dropout(0.2, seed=int(next(seeds))),
        *conv(64), *conv(64), MaxPooling2D(2), Dropout(0.3, seed=int(next(seeds))),
        *conv(128), GlobalAveragePooling2D(), Dense(10, activation="softmax", seed=int(next(seeds))),
    ], name="cifar10_cnn")


def training_callbacks(module, out: Path, checkpoint: str) -> list:
    """The callbacks of the run, from ``module`` (``minicnn.callbacks`` or ``keras.callbacks``)."""
    return [module.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True),
            module.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
            module.ModelCheckpoint(str(out / checkpoint), monitor="val_loss", save_best_only=True),
            module.CSVLogger(str(out / "training_log.csv"))]


def train_and_score(model, data: tuple, args: argparse.Namespace, callback_list: list, framework: str,
                    versions: dict[str, str], started: float) -> dict[str, Any]:
    """Fit with the validation split and callbacks, score on the test set, write and return results.json.

    Works for a minicnn or a Keras model, compiled with ``metrics=["accuracy"]``.
    """
    x_train, y_train, x_test, y_test = data
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=VALIDATION_SPLIT, callbacks=callback_list, verbose=args.verbose)
    fit_seconds = time.perf_counter() - start
    plain = {key: [float(v) for v in values] for key, values in history.history.items()}
    epochs_run = len(plain["loss"])
    n_train = int(len(x_train) * (1.0 - VALIDATION_SPLIT))  # where both frameworks cut validation_split
    val_loss, val_accuracy = (float(v) for v in model.evaluate(x_train[n_train:], y_train[n_train:],
                                                                batch_size=args.batch_size, verbose=0))
    test_loss, test_accuracy = (float(v) for v in model.evaluate(x_test, y_test, batch_size=args.batch_size,
                                                                  verbose=0))
    fold = FoldResult(fold=1, train_size=n_train, val_size=len(x_train) - n_train,
                      train_ranges=[(0, n_train)], val_ranges=[(n_train, len(x_train))], loss=val_loss,
                      accuracy=val_accuracy, wall_seconds=fit_seconds, fit_seconds=fit_seconds,
                      seconds_per_epoch=fit_seconds / epochs_run, history=plain)
    test = HoldoutResult(train_size=n_train, test_size=len(x_test), loss=test_loss, accuracy=test_accuracy,
                         fit_seconds=fit_seconds, seconds_per_epoch=fit_seconds / epochs_run, history=plain)
    config = {"folds": 1, "epochs": args.epochs, "epochs_run": epochs_run, "batch_size": args.batch_size,
              "seed": args.seed, "limit": args.limit, "quick": args.quick, "learning_rate": LEARNING_RATE,
              "validation_split": VALIDATION_SPLIT}
    results = build_results(framework=framework, dataset="cifar10", versions=versions, config=config,
                            cv=CrossValidationResult.from_folds([fold]), test=test,
                            total_seconds=time.perf_counter() - started)
    write_results(args.out / "results.json", results)
    print(f"\n{framework}: {epochs_run} epochs in {fit_seconds:.1f} s; best val_loss {val_loss:.4f} "
          f"(accuracy {val_accuracy:.2%}); test loss {test_loss:.4f}, accuracy {test_accuracy:.2%}")
    print(f"wrote {args.out / 'results.json'}, training_log.csv and the best model")
    return results
