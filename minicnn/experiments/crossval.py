"""K-fold cross-validation and hold-out testing with Keras' verbs only.

:func:`cross_validate` splits the data with scikit-learn's unshuffled ``KFold``
(contiguous validation blocks, as in the published MNIST experiment), trains a
fresh model per fold and scores it on the held-out block; :func:`fit_and_test`
trains one model and scores it on a separate test set. Both call nothing but
``model.fit(x, y, batch_size=, epochs=, verbose=, validation_data=, **fit_kwargs)``
and ``model.evaluate(x, y, batch_size=, verbose=0)``, with Keras' argument
names, so a Keras model runs through the same code as a minicnn one and the two
frameworks' numbers are comparable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from minicnn.files import atomic_write_json

_SET_BY_US = ("x", "y", "batch_size", "epochs", "verbose", "validation_data", "validation_split")
"""fit arguments the functions here set themselves, so ``fit_kwargs`` may not."""


@dataclass
class FoldResult:
    """One fold: its split, its score on the held-out block, its timings and its history.

    ``fold`` counts from 1. The ranges are half-open ``(start, stop)`` runs of
    sample indices (an unshuffled KFold gives one validation run and at most two
    training runs). ``accuracy`` is a fraction in [0, 1]. ``wall_seconds`` covers
    building, training and scoring the model; ``fit_seconds`` only ``fit``, and
    ``seconds_per_epoch`` is ``fit_seconds`` over the epochs run (validation
    included), since Keras' ``fit`` reports no per-epoch times.
    """

    fold: int
    train_size: int
    val_size: int
    train_ranges: list[tuple[int, int]]
    val_ranges: list[tuple[int, int]]
    loss: float
    accuracy: float
    wall_seconds: float
    fit_seconds: float
    seconds_per_epoch: float
    history: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CrossValidationResult:
    """Every fold's result and the scores' mean and population standard deviation over folds."""

    folds: list[FoldResult]
    mean_loss: float
    std_loss: float
    mean_accuracy: float
    std_accuracy: float

    @classmethod
    def from_folds(cls, folds: list[FoldResult]) -> CrossValidationResult:
        losses = np.array([f.loss for f in folds])
        accuracies = np.array([f.accuracy for f in folds])
        return cls(folds, float(losses.mean()), float(losses.std()),
                   float(accuracies.mean()), float(accuracies.std()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HoldoutResult:
    """A model trained on one set and scored on an untouched test set; fields as in FoldResult."""

    train_size: int
    test_size: int
    loss: float
    accuracy: float
    fit_seconds: float
    seconds_per_epoch: float
    history: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Score(NamedTuple):
    loss: float
    accuracy: float
    fit_seconds: float
    seconds_per_epoch: float
    history: dict[str, list[float]]


def cross_validate(model_fn: Callable[[int], Any], x, y, *, n_splits: int = 5, epochs: int = 10,
                   batch_size: int = 128, out_dir: str | os.PathLike | None = None, verbose: int = 1,
                   fit_kwargs: Mapping[str, Any] | None = None) -> CrossValidationResult:
    """Train and score one fresh model per fold of an unshuffled ``KFold(n_splits)``.

    x: (N, ...) inputs, y: (N, K) one-hot or (N,) labels, whatever the model's
    ``fit`` takes. ``model_fn(fold_index)``, with ``fold_index`` counting from 0,
    returns a new model compiled with ``metrics=["accuracy"]``; it owns the
    seeding (Keras' ``fit`` takes no seed). Each model is fitted on the other
    folds with the held-out fold as ``validation_data``, then evaluated on it.
    ``fit_kwargs`` go to every ``fit`` (e.g. ``{"seed": 0}`` for minicnn).
    With ``out_dir``, each fold's result is written to ``out_dir/fold_{k}.json``
    (k from 1) as soon as the fold ends, so an interrupted run keeps its finished
    folds. ``verbose`` goes to ``fit``; unless 0, a score line is printed after
    every fold and the mean and standard deviation after the last.
    """
    fit_kwargs = _checked_fit_kwargs(fit_kwargs, "cross_validate")
    _check_int(n_splits, "cross_validate: n_splits", minimum=2)
    _check_int(epochs, "cross_validate: epochs", minimum=1)
    _check_int(batch_size, "cross_validate: batch_size", minimum=1)
    if not callable(model_fn):
        raise TypeError(f"cross_validate: model_fn must be callable; got {type(model_fn).__name__}")
    if len(x) != len(y):
        raise ValueError(f"cross_validate: x has {len(x)} samples but y has {len(y)}")
    if len(x) < n_splits:
        raise ValueError(f"cross_validate: n_splits={n_splits} needs at least {n_splits} samples; "
                         f"got {len(x)}")
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)

    from sklearn.model_selection import KFold

    folds = []
    for index, (train, val) in enumerate(KFold(n_splits=n_splits).split(x)):
        fold = _run_fold(model_fn, index, x, y, train, val, batch_size=batch_size, epochs=epochs,
                         verbose=verbose, fit_kwargs=fit_kwargs)
        folds.append(fold)
        if out_dir is not None:
            atomic_write_json(out_dir / f"fold_{fold.fold}.json", fold.to_dict())
        if verbose:
            print(f"Score for fold {fold.fold}: Loss = {fold.loss:.4f}; "
                  f"Accuracy = {fold.accuracy * 100:.3f}%")
    result = CrossValidationResult.from_folds(folds)
    if verbose:
        print(f"Average over {n_splits} folds: Loss = {result.mean_loss:.4f} (± {result.std_loss:.4f}); "
              f"Accuracy = {result.mean_accuracy * 100:.3f}% (± {result.std_accuracy * 100:.3f}%)")
    return result


def _run_fold(model_fn, index: int, x, y, train: np.ndarray, val: np.ndarray, **fit_args) -> FoldResult:
    """Build, train and score fold ``index`` (from 0) on the given sample indices."""
    start = time.perf_counter()
    model = model_fn(index)
    score = _fit_and_score(model, (x[train], y[train]), (x[val], y[val]), validate=True, **fit_args)
    return FoldResult(fold=index + 1, train_size=len(train), val_size=len(val),
                      train_ranges=_ranges(train), val_ranges=_ranges(val),
                      loss=score.loss, accuracy=score.accuracy,
                      wall_seconds=time.perf_counter() - start, fit_seconds=score.fit_seconds,
                      seconds_per_epoch=score.seconds_per_epoch, history=score.history)


def fit_and_test(model, x_train, y_train, x_test, y_test, *, epochs: int = 10, batch_size: int = 128,
                 verbose: int = 1, fit_kwargs: Mapping[str, Any] | None = None) -> HoldoutResult:
    """Train ``model`` (compiled with ``metrics=["accuracy"]``) on the training set, score it on the test set.

    The test set stays untouched until the final ``evaluate``: it is not passed
    to ``fit`` as validation data. Shapes and ``fit_kwargs`` as in :func:`cross_validate`.
    """
    fit_kwargs = _checked_fit_kwargs(fit_kwargs, "fit_and_test")
    _check_int(epochs, "fit_and_test: epochs", minimum=1)
    _check_int(batch_size, "fit_and_test: batch_size", minimum=1)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"fit_and_test: x_train/y_train have {len(x_train)}/{len(y_train)} samples and "
                         f"x_test/y_test {len(x_test)}/{len(y_test)}; each pair must match")
    score = _fit_and_score(model, (x_train, y_train), (x_test, y_test), validate=False,
                           batch_size=batch_size, epochs=epochs, verbose=verbose, fit_kwargs=fit_kwargs)
    return HoldoutResult(train_size=len(x_train), test_size=len(x_test), loss=score.loss,
                         accuracy=score.accuracy, fit_seconds=score.fit_seconds,
                         seconds_per_epoch=score.seconds_per_epoch, history=score.history)


def _fit_and_score(model, train: tuple, held_out: tuple, *, validate: bool, batch_size: int, epochs: int,
                   verbose: int, fit_kwargs: dict[str, Any]) -> _Score:
    """``fit`` on ``train`` (validating on ``held_out`` if ``validate``), then ``evaluate`` ``held_out``."""
    validation = {"validation_data": held_out} if validate else {}
    start = time.perf_counter()
    history = model.fit(*train, batch_size=batch_size, epochs=epochs, verbose=verbose, **validation,
                        **fit_kwargs)
    fit_seconds = time.perf_counter() - start
    scores = model.evaluate(*held_out, batch_size=batch_size, verbose=0)
    if np.ndim(scores) != 1 or len(scores) != 2:
        raise ValueError(f"evaluate returned {scores!r}, not [loss, accuracy]: "
                         "compile the model with metrics=['accuracy'] (and no other metric)")
    # Fewer epochs than asked may run (a Keras EarlyStopping callback in fit_kwargs, say).
    epochs_run = len(history.history.get("loss", ())) or epochs
    plain = {key: [float(v) for v in values] for key, values in history.history.items()}
    return _Score(float(scores[0]), float(scores[1]), fit_seconds, fit_seconds / epochs_run, plain)


def _ranges(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted sample indices as half-open runs: [0, 1, 2, 5, 6] -> [(0, 3), (5, 7)]."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(indices, breaks)]


def _checked_fit_kwargs(fit_kwargs: Mapping[str, Any] | None, caller: str) -> dict[str, Any]:
    """``fit_kwargs`` as a new dict; ValueError if it sets an argument ``caller`` sets itself."""
    fit_kwargs = dict(fit_kwargs or {})
    clashes = sorted(set(fit_kwargs) & set(_SET_BY_US))
    if clashes:
        raise ValueError(f"{caller}: fit_kwargs may not set {', '.join(clashes)}; "
                         f"{caller} sets {', '.join(_SET_BY_US)} itself")
    return fit_kwargs


def _check_int(value, name: str, minimum: int) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
