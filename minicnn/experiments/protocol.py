"""The published k-fold experiment's settings, and the seeds of its parts.

Every random draw of a run comes from one ``--seed``: :func:`derived_seed` gives each
fold's model, the final model and each model's shuffling a seed of its own, so any
part can be run alone (one fold on another machine, a resumed fold) and give the
same numbers as in the whole run. :func:`fold_model` and :func:`fold_fit_kwargs` are
plain module functions, so ``functools.partial`` of them pickles into worker processes.
"""

from __future__ import annotations

import numpy as np

import minicnn
from minicnn.experiments.published_model import mnist_cnn

FULL = {"folds": 5, "epochs": 10, "limit": None}
QUICK = {"folds": 2, "epochs": 4, "limit": 14000}
"""Settings of the full protocol and of ``--quick``; a flag given explicitly overrides either."""

LEARNING_RATE = 0.001
BATCH_SIZE = 128

FOLD_SEEDS, FINAL_SEED, SHUFFLE_SEED = 0, 1, 2
"""Tags that keep the seeds of the folds, of the final model and of the shuffling apart."""


def derived_seed(seed: int, *tags: int) -> int:
    """A seed for one part of the run, e.g. ``derived_seed(0, FOLD_SEEDS, 2)`` for the third fold."""
    return int(np.random.SeedSequence([seed, *tags]).generate_state(1)[0])


def fold_seed(run_seed: int, fold_index: int) -> int:
    """The seed of fold ``fold_index``'s model (from 0)."""
    return derived_seed(run_seed, FOLD_SEEDS, fold_index)


def final_seed(run_seed: int) -> int:
    """The seed of the final model, trained on the training set and scored on the test set."""
    return derived_seed(run_seed, FINAL_SEED)


def shuffle_seed(model_seed: int) -> int:
    """The seed of ``fit``'s shuffling for the model built with ``model_seed``."""
    return derived_seed(model_seed, SHUFFLE_SEED)


def build_model(input_shape: tuple[int, int, int], num_classes: int, seed: int) -> minicnn.Sequential:
    """A fresh published CNN, compiled as in the experiment, and every random draw seeded by ``seed``.

    Resetting the global generator as well, the way ``keras.utils.set_random_seed``
    would, makes any unseeded draw repeatable too.
    """
    minicnn.set_random_seed(seed)
    model = mnist_cnn(input_shape, num_classes, seed=seed)
    model.compile(optimizer=minicnn.Adam(learning_rate=LEARNING_RATE), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fold_model(input_shape: tuple[int, int, int], num_classes: int, run_seed: int,
               fold_index: int) -> minicnn.Sequential:
    """Fold ``fold_index``'s fresh model: ``partial(fold_model, shape, classes, seed)`` is a ``model_fn``."""
    return build_model(input_shape, num_classes, fold_seed(run_seed, fold_index))


def fold_fit_kwargs(run_seed: int, fold_index: int) -> dict[str, int]:
    """Fold ``fold_index``'s ``fit`` arguments: the seed of its shuffling."""
    return {"seed": shuffle_seed(fold_seed(run_seed, fold_index))}
