"""K-fold cross-validation and hold-out testing with Keras' verbs only.

:func:`cross_validate` splits the data with scikit-learn's unshuffled ``KFold``
(contiguous validation blocks, as in the published MNIST experiment), trains a
fresh model per fold and scores it on the held-out block; :func:`fit_and_test`
trains one model and scores it on a separate test set. Both call nothing but
``model.fit(x, y, batch_size=, epochs=, verbose=, validation_data=, **fit_kwargs)``
and ``model.evaluate(x, y, batch_size=, verbose=0)``, with Keras' argument
names, so a Keras model runs through the same code as a minicnn one and the two
frameworks' numbers are comparable. (Epoch checkpoints, for minicnn models, add
``fit(initial_epoch=)``, ``save`` and ``minicnn.load_model``.) The folds can run in
parallel on any joblib backend (:mod:`minicnn.experiments.parallel`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from minicnn.experiments.checkpoints import fit_with_checkpoints, remove_checkpoints
from minicnn.experiments.parallel import run_tasks
from minicnn.experiments.rundir import NonFiniteScoreError, read_part, worker_hold, write_part
from minicnn.experiments.schema import check_fold
from minicnn.validation import check_int

_SET_BY_US = ("x", "y", "batch_size", "epochs", "initial_epoch", "verbose", "validation_data",
              "validation_split")
"""fit arguments the functions here set themselves, so ``fit_kwargs`` may not."""

FitKwargs = Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoldResult:
        """The fold ``to_dict`` gave (ranges back as tuples), from a dict or a parsed fold file."""
        ranges = {key: [tuple(r) for r in d[key]] for key in ("train_ranges", "val_ranges")}
        return cls(**{**{f.name: d[f.name] for f in fields(cls)}, **ranges})


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HoldoutResult:
        """The result ``to_dict`` gave, from a dict or a parsed ``test.json``."""
        return cls(**{f.name: d[f.name] for f in fields(cls)})


class _Score(NamedTuple):
    model: Any
    loss: float
    accuracy: float
    fit_seconds: float
    seconds_per_epoch: float
    history: dict[str, list[float]]


def cross_validate(model_fn: Callable[[int], Any], x, y, *, n_splits: int = 5, epochs: int = 10,
                   batch_size: int = 128, out_dir: str | os.PathLike | None = None, verbose: int = 1,
                   fit_kwargs: FitKwargs = None, folds: Sequence[int] | None = None, n_jobs: int = 1,
                   backend: str | None = None, record: Mapping[str, Any] | None = None,
                   resume: bool = False, checkpoints: bool = False) -> CrossValidationResult:
    """Train and score one fresh model per fold of an unshuffled ``KFold(n_splits)``.

    x: (N, ...) inputs, y: (N, K) one-hot or (N,) labels, whatever the model's
    ``fit`` takes. ``model_fn(fold_index)``, with ``fold_index`` counting from 0,
    returns a new model compiled with ``metrics=["accuracy"]``; it owns the
    seeding (Keras' ``fit`` takes no seed). Each model is fitted on the other
    folds with the held-out fold as ``validation_data``, then evaluated on it.
    ``fit_kwargs`` go to every ``fit`` (e.g. ``{"seed": 0}`` for minicnn); it may
    also be a function of the fold index that returns them (a seed per fold).
    ``folds`` (counting from 1) runs only those folds; the result then holds only them.

    Parallel folds: ``n_jobs`` folds at once in local processes (loky), or on the
    joblib ``backend`` named (``"dask"`` with a ``dask.distributed.Client`` open,
    ``"ray"``, ...), each worker limited to its share of the cores. ``model_fn`` and
    ``fit_kwargs`` must then pickle (cloudpickle: closures are fine). The results are
    the same as a sequential run's, bit for bit.

    With ``out_dir``, each fold's result is written to ``out_dir/fold_{k}.json``
    (k from 1), with ``record`` (the run's configuration and data fingerprint, see
    :func:`minicnn.experiments.rundir.run_record`), as soon as the fold ends. An
    existing fold file is an error, unless ``resume``: then it is read back instead
    of trained again, after checking that its record is ``record``. ``checkpoints``
    (minicnn models, a ``seed`` in ``fit_kwargs``) saves each fold after every epoch
    in ``out_dir/checkpoints/fold_{k}/``, so a resumed fold goes on from its last
    finished epoch. ``verbose`` goes to ``fit`` (0 when folds run in parallel); unless
    0, a score line is printed after every fold and the mean and standard deviation
    after the last. ValueError, before anything is written, if a score is NaN or infinite.
    """
    check_int(n_splits, "cross_validate: n_splits", minimum=2)
    check_int(epochs, "cross_validate: epochs", minimum=1)
    check_int(batch_size, "cross_validate: batch_size", minimum=1)
    if not callable(model_fn):
        raise TypeError(f"cross_validate: model_fn must be callable; got {type(model_fn).__name__}")
    if len(x) != len(y):
        raise ValueError(f"cross_validate: x has {len(x)} samples but y has {len(y)}")
    if len(x) < n_splits:
        raise ValueError(f"cross_validate: n_splits={n_splits} needs at least {n_splits} samples; "
                         f"got {len(x)}")
    wanted = _checked_folds(folds, n_splits)
    if (checkpoints or resume) and out_dir is None:
        raise ValueError("cross_validate: checkpoints and resume need an out_dir")
    parallel = n_jobs != 1 or backend is not None
    out_dir, record = (None if out_dir is None else Path(out_dir)), dict(record or {})
    fold_args = {"batch_size": batch_size, "epochs": epochs, "verbose": 0 if parallel else verbose,
                 "record": record}

    from sklearn.model_selection import KFold

    done, tasks = {}, []
    for index, (train, val) in enumerate(KFold(n_splits=n_splits).split(x)):
        if index + 1 not in wanted:
            continue
        finished = _finished_fold(out_dir, index + 1, record, resume, epochs)
        if finished is not None:
            done[index + 1] = finished
            continue
        checkpoint_dir = _checkpoint_dir(out_dir, index + 1, resume) if checkpoints else None
        tasks.append((model_fn, index, x, y, train, val, _fold_fit_kwargs(fit_kwargs, index),
                      checkpoint_dir, fold_args))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    results = run_tasks(_run_fold, tasks, n_jobs=n_jobs, backend=backend) if parallel else \
        (_run_fold(*task) for task in tasks)
    for fold in results:
        if out_dir is not None:
            write_part(out_dir / f"fold_{fold.fold}.json", fold.to_dict(), record)
            if checkpoints:
                remove_checkpoints(out_dir / "checkpoints" / f"fold_{fold.fold}")
        done[fold.fold] = fold
        if verbose:
            print(f"Score for fold {fold.fold}: Loss = {fold.loss:.4f}; "
                  f"Accuracy = {fold.accuracy * 100:.3f}%")
    result = CrossValidationResult.from_folds([done[k] for k in sorted(done)])
    if verbose:
        print(f"Average over {len(done)} folds: Loss = {result.mean_loss:.4f} (± {result.std_loss:.4f}); "
              f"Accuracy = {result.mean_accuracy * 100:.3f}% (± {result.std_accuracy * 100:.3f}%)")
    return result


def _finished_fold(out_dir: Path | None, fold: int, record: dict[str, Any],
                   resume: bool, epochs: int) -> FoldResult | None:
    """Fold ``fold`` (from 1) read back from its file when resuming, else None; never overwritten."""
    path = None if out_dir is None else out_dir / f"fold_{fold}.json"
    if path is None or not path.exists():
        return None
    if not resume:
        raise FileExistsError(f"cross_validate: {path} exists; pass resume=True to keep it, "
                              "or choose another out_dir")
    return FoldResult.from_dict(check_fold(read_part(path, record), path, fold, epochs))


def _checkpoint_dir(out_dir: Path, fold: int, resume: bool) -> Path:
    """Where fold ``fold`` (from 1) keeps its epoch checkpoints; earlier ones only with ``resume``."""
    directory = out_dir / "checkpoints" / f"fold_{fold}"
    if directory.exists() and not resume:
        raise FileExistsError(f"cross_validate: {directory} holds an earlier run's checkpoints; "
                              "pass resume=True to go on from them, or choose another out_dir")
    return directory


def _checked_folds(folds: Sequence[int] | None, n_splits: int) -> set[int]:
    """The folds to run, from 1; ValueError naming any outside 1..n_splits."""
    if folds is None:
        return set(range(1, n_splits + 1))
    wrong = [k for k in folds if isinstance(k, bool) or not isinstance(k, (int, np.integer))
             or not 1 <= k <= n_splits]
    if wrong or not folds:
        raise ValueError(f"cross_validate: folds must be fold numbers in 1..{n_splits}; got {list(folds)!r}")
    return set(folds)


def _fold_fit_kwargs(fit_kwargs: FitKwargs, index: int) -> dict[str, Any]:
    """The fit arguments of fold ``index`` (from 0), checked."""
    return _checked_fit_kwargs(fit_kwargs(index) if callable(fit_kwargs) else fit_kwargs, "cross_validate")


def _run_fold(model_fn, index: int, x, y, train: np.ndarray, val: np.ndarray, fit_kwargs: dict[str, Any],
              checkpoint_dir: Path | None, fold_args: dict[str, Any]) -> FoldResult:
    """Build, train and score fold ``index`` (from 0) on the given sample indices."""
    start = time.perf_counter()
    model = model_fn(index)
    # A fold that writes checkpoints holds the run folder (out_dir/checkpoints/fold_k) while it trains.
    with nullcontext() if checkpoint_dir is None else worker_hold(checkpoint_dir.parents[1]):
        score = _fit_and_score(model, (x[train], y[train]), (x[val], y[val]), validate=True,
                               fit_kwargs=fit_kwargs, checkpoint_dir=checkpoint_dir, **fold_args)
    return FoldResult(fold=index + 1, train_size=len(train), val_size=len(val),
                      train_ranges=_ranges(train), val_ranges=_ranges(val),
                      loss=score.loss, accuracy=score.accuracy,
                      wall_seconds=time.perf_counter() - start, fit_seconds=score.fit_seconds,
                      seconds_per_epoch=score.seconds_per_epoch, history=score.history)


def fit_and_test(model, x_train, y_train, x_test, y_test, *, epochs: int = 10, batch_size: int = 128,
                 verbose: int = 1, fit_kwargs: Mapping[str, Any] | None = None,
                 checkpoint_dir: str | os.PathLike | None = None,
                 record: Mapping[str, Any] | None = None) -> tuple[Any, HoldoutResult]:
    """Train ``model`` (compiled with ``metrics=["accuracy"]``) on the training set, score it on the test set.

    The test set stays untouched until the final ``evaluate``: it is not passed
    to ``fit`` as validation data. Shapes and ``fit_kwargs`` as in :func:`cross_validate`.
    With ``checkpoint_dir`` (minicnn models, a ``seed`` in ``fit_kwargs``) the model is
    saved there after every epoch, with ``record``, and training resumes from the
    last one. Returns the trained model (a loaded one if resumed) and its result.
    """
    fit_kwargs = _checked_fit_kwargs(fit_kwargs, "fit_and_test")
    check_int(epochs, "fit_and_test: epochs", minimum=1)
    check_int(batch_size, "fit_and_test: batch_size", minimum=1)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"fit_and_test: x_train/y_train have {len(x_train)}/{len(y_train)} samples and "
                         f"x_test/y_test {len(x_test)}/{len(y_test)}; each pair must match")
    score = _fit_and_score(model, (x_train, y_train), (x_test, y_test), validate=False,
                           batch_size=batch_size, epochs=epochs, verbose=verbose, fit_kwargs=fit_kwargs,
                           checkpoint_dir=checkpoint_dir, record=record or {})
    return score.model, HoldoutResult(train_size=len(x_train), test_size=len(x_test), loss=score.loss,
                         accuracy=score.accuracy, fit_seconds=score.fit_seconds,
                         seconds_per_epoch=score.seconds_per_epoch, history=score.history)


def _fit_and_score(model, train: tuple, held_out: tuple, *, validate: bool, batch_size: int, epochs: int,
                   verbose: int, fit_kwargs: dict[str, Any], checkpoint_dir: str | os.PathLike | None,
                   record: Mapping[str, Any]) -> _Score:
    """``fit`` on ``train`` (validating on ``held_out`` if ``validate``), then ``evaluate`` ``held_out``."""
    fit_args = {"batch_size": batch_size, "verbose": verbose}
    if validate:
        fit_args["validation_data"] = held_out
    if checkpoint_dir is None:
        start = time.perf_counter()
        history = model.fit(*train, epochs=epochs, **fit_args, **fit_kwargs).history
        fit_seconds = time.perf_counter() - start
    else:
        model, history, fit_seconds = fit_with_checkpoints(
            model, *train, directory=checkpoint_dir, record=record, epochs=epochs, fit_kwargs=fit_kwargs,
            **fit_args)
    scores = model.evaluate(*held_out, batch_size=batch_size, verbose=0)
    if np.ndim(scores) != 1 or len(scores) != 2:
        raise ValueError(f"evaluate returned {scores!r}, not [loss, accuracy]: "
                         "compile the model with metrics=['accuracy'] (and no other metric)")
    if not np.isfinite(scores).all():
        raise NonFiniteScoreError(f"the model scores loss {scores[0]}, accuracy {scores[1]} on the "
                                  "held-out data: the training diverged; try a smaller learning rate")
    # Fewer epochs than asked may run (a Keras EarlyStopping callback in fit_kwargs, say).
    epochs_run = len(history.get("loss", ())) or epochs
    plain = {key: [float(v) for v in values] for key, values in history.items()}
    return _Score(model, float(scores[0]), float(scores[1]), fit_seconds, fit_seconds / epochs_run, plain)


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
