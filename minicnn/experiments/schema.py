"""Parts read back from a run folder, checked against the results schema before they are used.

A fold file (``fold_<k>.json``) or ``test.json`` may come from another machine, or be
damaged or edited. :func:`check_fold` and :func:`check_holdout` check one part's keys,
types and ranges (integer sizes of at least 1, finite losses, accuracies in [0, 1], a
history of finite numbers, one per epoch run); :func:`check_folds_agree` checks that the
folds of one run split one set of samples: each fold's validation block follows the
previous one's and its training runs are the rest. Every error is a
:class:`~minicnn.experiments.rundir.RunDirError` naming the file and the field
(``fold_2.json: accuracy: expected a number in [0, 1]; got 1.7``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from minicnn.experiments.rundir import RunDirError

FOLD_FIELDS = ("fold", "train_size", "val_size", "train_ranges", "val_ranges", "loss", "accuracy",
               "wall_seconds", "fit_seconds", "seconds_per_epoch", "history")
HOLDOUT_FIELDS = ("train_size", "test_size", "loss", "accuracy", "fit_seconds", "seconds_per_epoch",
                  "history")


def check_fold(part: Mapping[str, Any], path: str | os.PathLike, fold: int, epochs: int) -> dict[str, Any]:
    """``part`` if it is fold ``fold`` (from 1) of a run of ``epochs`` epochs; else RunDirError."""
    where = os.fspath(path)
    _check_keys(part, FOLD_FIELDS, where)
    if not _is_int(part["fold"]) or part["fold"] != fold:
        _fail(where, "fold", f"the fold number {fold} (as in the file's name)", part["fold"])
    for key in ("train_size", "val_size"):
        _check_size(part[key], where, key)
    for key, size in (("train_ranges", "train_size"), ("val_ranges", "val_size")):
        _check_ranges(part[key], part[size], where, key)
    _check_scores(part, where, epochs)
    _check_number(part["wall_seconds"], where, "wall_seconds", 0, math.inf)
    return dict(part)


def check_holdout(part: Mapping[str, Any], path: str | os.PathLike, epochs: int) -> dict[str, Any]:
    """``part`` if it is the hold-out test of a run of ``epochs`` epochs; else RunDirError."""
    where = os.fspath(path)
    _check_keys(part, HOLDOUT_FIELDS, where)
    for key in ("train_size", "test_size"):
        _check_size(part[key], where, key)
    _check_scores(part, where, epochs)
    return dict(part)


def check_folds_agree(folds: Sequence[Mapping[str, Any]], paths: Sequence[str | os.PathLike]) -> None:
    """RunDirError unless the folds, in order, split one set of samples as an unshuffled KFold does."""
    samples = sum(fold["val_size"] for fold in folds)
    start = 0
    for fold, path in zip(folds, paths, strict=True):
        block = [start, start + fold["val_size"]]
        if [list(r) for r in fold["val_ranges"]] != [block]:
            _fail(os.fspath(path), "val_ranges", f"[{block}] (after the folds before it)", fold["val_ranges"])
        rest = [r for r in ([0, block[0]], [block[1], samples]) if r[0] < r[1]]
        if [list(r) for r in fold["train_ranges"]] != rest:
            _fail(os.fspath(path), "train_ranges", f"{rest} (the samples of the other folds)",
                  fold["train_ranges"])
        start = block[1]


def _check_keys(part: Mapping[str, Any], fields: Sequence[str], where: str) -> None:
    if not isinstance(part, Mapping):
        raise RunDirError(f"{where}: expected a JSON object; got {type(part).__name__}")
    missing = [key for key in fields if key not in part]
    unknown = sorted(set(part) - set(fields))
    if missing or unknown:
        raise RunDirError(f"{where}: " + "; ".join(
            ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"]
                                                                     if unknown else [])))


def _check_scores(part: Mapping[str, Any], where: str, epochs: int) -> None:
    _check_number(part["loss"], where, "loss", 0, math.inf)
    _check_number(part["accuracy"], where, "accuracy", 0, 1)
    _check_number(part["fit_seconds"], where, "fit_seconds", 0, math.inf)
    _check_number(part["seconds_per_epoch"], where, "seconds_per_epoch", 0, math.inf)
    history = part["history"]
    if not isinstance(history, Mapping) or "loss" not in history:
        _fail(where, "history", "an object of lists holding at least 'loss'", history)
    runs = len(history["loss"]) if isinstance(history["loss"], list) else -1
    for key, values in history.items():
        if not isinstance(values, list) or not 1 <= len(values) <= epochs or len(values) != runs:
            _fail(where, f"history: {key}", f"a list of one number per epoch run (1 to {epochs}, as many "
                  "as 'loss' has)", values)
        for value in values:
            _check_number(value, where, f"history: {key}", -math.inf, math.inf)


def _check_number(value: Any, where: str, field: str, low: float, high: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high):
        bounds = "a finite number" if math.isinf(low) else \
            f"a number in [{low}, {high}]" if math.isfinite(high) else f"a finite number >= {low}"
        _fail(where, field, bounds, value)


def _check_size(value: Any, where: str, field: str) -> None:
    if not _is_int(value) or value < 1:
        _fail(where, field, "a whole number of samples, at least 1", value)


def _check_ranges(ranges: Any, size: int, where: str, field: str) -> None:
    pairs = isinstance(ranges, list) and all(
        isinstance(r, list) and len(r) == 2 and all(_is_int(i) for i in r) and 0 <= r[0] < r[1]
        for r in ranges)
    if not pairs or sum(stop - start for start, stop in ranges) != size:
        _fail(where, field, f"[start, stop) pairs of sample indices covering {size} samples", ranges)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(where: str, field: str, expected: str, got: Any) -> None:
    shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:77] + "..."
    raise RunDirError(f"{where}: {field}: expected {expected}; got {shown}")
