"""The published MNIST k-fold experiment, end to end, with minicnn.

1. Cross-validation: all 70,000 MNIST digits (the 60,000 training images, then
   the 10,000 test images), scaled to [0, 1], split by an unshuffled 5-fold
   KFold; per fold a fresh published CNN (Adam, lr 0.001, categorical
   cross-entropy) trains 10 epochs in batches of 128, validating on its
   held-out fold every epoch.
2. Held-out test: a final model trains on the 60,000 training images and is
   scored once on the 10,000 test images it never saw. The confusion matrix,
   the classification report and the misclassified digits describe that test.

Writes to ``--out`` (default ``runs/<UTC time>/``): ``fold_<k>.json`` as each
fold ends, ``learning_curves.png``, ``confusion_matrix.png``,
``classification_report.txt``, ``misclassified.png``, ``final_model.npz`` and
``results.json`` (the schema of ``minicnn.experiments.results``, shared with the Keras
baseline). ``--quick`` runs every step on less data in about a minute;
``--dataset digits`` uses scikit-learn's bundled 8x8 digits (no download).

    python examples/mnist_kfold.py            # the full protocol
    python examples/mnist_kfold.py --quick    # every step, about a minute
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import minicnn  # before NumPy: it sets thread settings that NumPy reads as it loads

# isort: split
import numpy as np

from minicnn import datasets
from minicnn.experiments import evaluation
from minicnn.files import atomic_write
from minicnn.experiments.published_model import mnist_cnn
from minicnn.experiments.results import build_results, write_results
from minicnn.experiments.crossval import CrossValidationResult, HoldoutResult, cross_validate, fit_and_test

FULL = {"folds": 5, "epochs": 10, "limit": None}
QUICK = {"folds": 2, "epochs": 4, "limit": 14000}
"""Settings of the full protocol and of ``--quick``; a flag given explicitly overrides either."""

TITLES = {"mnist": "MNIST", "digits": "scikit-learn's 8x8 digits"}
DIGITS_TEST_FRACTION = 0.2
LEARNING_RATE = 0.001
FOLD_SEEDS, FINAL_SEED = 0, 1
"""Tags that keep the folds' seeds and the final model's seed apart (see :func:`derived_seed`)."""


@dataclass
class Data:
    """The arrays of one run: x float32 NHWC in [0, 1], y integer labels (N,)."""

    name: str
    x_cv: np.ndarray
    y_cv: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, help=f"number of KFold splits ({FULL['folds']}; "
                        f"{QUICK['folds']} with --quick)")
    parser.add_argument("--epochs", type=int, help=f"epochs per model ({FULL['epochs']}; "
                        f"{QUICK['epochs']} with --quick)")
    parser.add_argument("--batch-size", type=int, default=128, help="mini-batch size (128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (0)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="cross-validate on the first N images only, and train the final model on the "
                        "first N*6//7 training images, testing on the first N//7 test images "
                        f"(all; {QUICK['limit']} with --quick)")
    parser.add_argument("--quick", action="store_true", help="every step on less data, in about a "
                        "minute on 2 cores: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                        help="mnist (default), or digits: scikit-learn's 8x8 digits, "
                        "the last 20%% as test set")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the MNIST files are (see minicnn.datasets.load_mnist)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory, new or empty (runs/<UTC time>/)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                        help="0 no training output, 1 (default) progress bars and a line per epoch, "
                        "2 the line only")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error(f"--epochs and --batch-size must be at least 1; got {args.epochs} and {args.batch_size}")
    if args.limit is not None and args.limit < max(7, args.folds):
        parser.error(f"--limit must be at least 7 (for a test image) and at least --folds; got {args.limit}")
    if args.out is None:
        args.out = Path("runs") / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"--out {args.out} already exists and is not an empty directory; "
                     "choose a new one so an earlier run's results are not overwritten")
    return args


def load_data(args: argparse.Namespace) -> Data:
    """The cross-validation, training and test arrays, cut down by ``args.limit``.

    Cross-validation runs over the training images followed by the test images
    (``datasets.load_mnist_all``'s order); for digits the test set is the last 20%.
    """
    if args.dataset == "mnist":
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data_dir)
        x_train, x_test = datasets.prepare_images(x_train), datasets.prepare_images(x_test)
    else:
        x, y = datasets.load_digits()
        cut = len(x) - round(DIGITS_TEST_FRACTION * len(x))
        x_train, y_train, x_test, y_test = x[:cut], y[:cut], x[cut:], y[cut:]
    x_cv, y_cv = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    if args.limit is not None and args.limit > len(x_cv):
        raise SystemExit(f"error: --limit {args.limit:,} is more than the {len(x_cv):,} images "
                         f"of {args.dataset}")
    if args.limit is not None:
        n_train, n_test = args.limit * 6 // 7, args.limit // 7
        x_cv, y_cv = x_cv[:args.limit], y_cv[:args.limit]
        x_train, y_train = x_train[:n_train], y_train[:n_train]
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    return Data(args.dataset, x_cv, y_cv.astype(np.int64), x_train, y_train.astype(np.int64),
                x_test, y_test.astype(np.int64), num_classes=10)


def derived_seed(seed: int, *tags: int) -> int:
    """A seed for one part of the run, e.g. ``derived_seed(0, FOLD_SEEDS, 2)`` for the third fold."""
    return int(np.random.SeedSequence([seed, *tags]).generate_state(1)[0])


def build_model(input_shape: tuple[int, int, int], num_classes: int, seed: int) -> minicnn.Sequential:
    """A fresh published CNN, compiled as in the experiment, and every random draw seeded by ``seed``.

    Resetting the global generator seeds ``fit``'s shuffling too, the way
    ``keras.utils.set_random_seed`` would, so each model is repeatable on its own.
    """
    minicnn.set_random_seed(seed)
    model = mnist_cnn(input_shape, num_classes, seed=seed)
    model.compile(optimizer=minicnn.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def print_header(args: argparse.Namespace, data: Data, model: minicnn.Sequential) -> None:
    if args.quick:
        print("QUICK RUN: every step on less data, for a quick look; not the published protocol.")
    print(f"Dataset: {TITLES[data.name]}, images {data.x_cv.shape[1:]}, {data.num_classes} classes")
    which = f"the first {len(data.x_cv):,}" if args.limit else f"all {len(data.x_cv):,}"
    print(f"Cross-validation: unshuffled {args.folds}-fold KFold over {which} images "
          "(training images, then test images)")
    print(f"Held-out test: a final model trained on {len(data.x_train):,} training images, "
          f"scored once on {len(data.x_test):,} test images it never saw")
    print(f"Model: published CNN, {model.count_params():,} parameters, Adam(learning_rate={LEARNING_RATE}); "
          f"{args.epochs} epochs, batch size {args.batch_size}, seed {args.seed}")
    print(f"Output: {args.out}/\n")


def write_test_outputs(model: minicnn.Sequential, data: Data, args: argparse.Namespace) -> str:
    """Write the test set's confusion matrix, classification report and misclassified digits.

    Returns the report's text, which is also written to classification_report.txt.
    """
    probabilities = model.predict(data.x_test, batch_size=args.batch_size)
    about = f"final model on the {len(data.x_test):,} held-out test images of {TITLES[data.name]}"
    cm = evaluation.confusion_matrix(data.y_test, probabilities, data.num_classes)
    evaluation.plot_confusion_matrix(cm, args.out / "confusion_matrix.png",
                                     title=f"Confusion matrix: {about}")
    evaluation.plot_misclassified(data.x_test, data.y_test, probabilities, args.out / "misclassified.png",
                                  title="Misclassified held-out test images (final model)")
    report = (f"Classification report: {about} (trained on {len(data.x_train):,} images)\n\n"
              + evaluation.classification_report(data.y_test, probabilities,
                                                 [str(c) for c in range(data.num_classes)]))
    atomic_write(args.out / "classification_report.txt", lambda f: f.write(report.encode()))
    return report


def print_summary(cv: CrossValidationResult, test: HoldoutResult, total_seconds: float, out: Path) -> None:
    print(f"\n{'Fold':>4} {'Train':>7} {'Val':>7} {'Loss':>8} {'Accuracy':>9} {'Fit s':>8} {'s/epoch':>8}")
    for f in cv.folds:
        print(f"{f.fold:>4} {f.train_size:>7,} {f.val_size:>7,} {f.loss:>8.4f} {f.accuracy:>9.3%} "
              f"{f.fit_seconds:>8.1f} {f.seconds_per_epoch:>8.1f}")
    print(f"Mean over folds: loss {cv.mean_loss:.4f} (± {cv.std_loss:.4f}), "
          f"accuracy {cv.mean_accuracy:.3%} (± {cv.std_accuracy:.3%})")
    print(f"Held-out test ({test.test_size:,} images, final model trained on {test.train_size:,}): "
          f"loss {test.loss:.4f}, accuracy {test.accuracy:.3%}")
    print(f"Total wall time: {total_seconds:.1f} s")
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    print(f"Written to {out}/: " + ", ".join(written))


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the experiment with command-line ``argv``; returns what it writes to results.json."""
    args = parse_args(argv)
    started = time.perf_counter()
    minicnn.set_random_seed(args.seed)
    data = load_data(args)
    input_shape = data.x_cv.shape[1:]
    args.out.mkdir(parents=True, exist_ok=True)
    print_header(args, data, mnist_cnn(input_shape, data.num_classes))

    def model_fn(fold_index: int) -> minicnn.Sequential:
        return build_model(input_shape, data.num_classes, derived_seed(args.seed, FOLD_SEEDS, fold_index))

    cv = cross_validate(model_fn, data.x_cv, minicnn.to_categorical(data.y_cv, data.num_classes),
                        n_splits=args.folds, epochs=args.epochs, batch_size=args.batch_size,
                        out_dir=args.out, verbose=args.verbose)
    title = f"Learning curves: {args.folds}-fold cross-validation on {TITLES[data.name]}"
    evaluation.plot_learning_curves([f.history for f in cv.folds], args.out / "learning_curves.png", title)

    print(f"\nFinal model: training on {len(data.x_train):,} images, then testing on {len(data.x_test):,}")
    model = build_model(input_shape, data.num_classes, derived_seed(args.seed, FINAL_SEED))
    test = fit_and_test(model, data.x_train, minicnn.to_categorical(data.y_train, data.num_classes),
                        data.x_test, minicnn.to_categorical(data.y_test, data.num_classes),
                        epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose)
    model.save(args.out / "final_model.npz")
    print("\n" + write_test_outputs(model, data, args))

    config = {"folds": args.folds, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
              "limit": args.limit, "quick": args.quick, "learning_rate": LEARNING_RATE}
    results = build_results(framework="minicnn", dataset=data.name, versions=_versions(), config=config,
                            cv=cv, test=test, total_seconds=time.perf_counter() - started)
    write_results(args.out / "results.json", results)
    print_summary(cv, test, results["total_seconds"], args.out)
    return results


def _versions() -> dict[str, str]:
    import numba
    import sklearn

    return {"minicnn": minicnn.__version__, "numba": numba.__version__, "scikit-learn": sklearn.__version__}


if __name__ == "__main__":
    main()
