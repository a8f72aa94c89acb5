"""``results.json``: one run of the k-fold protocol, in a schema any framework can fill.

minicnn's ``examples/mnist_kfold.py`` and the Keras baseline in ``benchmarks/``
both write it with :func:`build_results`, so their files compare key for key::

    {"framework": "minicnn", "dataset": "mnist", "date": "2025-01-31T12:00:00+00:00",
     "machine": {"cpu": ..., "cores": ..., "platform": ...},
     "versions": {"python": ..., "numpy": ..., <framework's own>: ...},
     "config": {"folds": 5, "epochs": 10, "batch_size": 128, "seed": 0, "limit": null, ...},
     "folds": [FoldResult.to_dict(), ...],
     "mean": {"loss": ..., "accuracy": ..., "loss_std": ..., "accuracy_std": ...},
     "test": HoldoutResult.to_dict(),
     "total_seconds": ...}

Accuracies are fractions in [0, 1]; standard deviations are over folds (population).
minicnn's example adds ``"sessions"`` (each session's start and own wall time, when a
run was resumed; ``total_seconds`` is their sum) and ``"threads"`` (how many folds ran at
once, and the threads each used).
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.experiments.crossval import CrossValidationResult, FoldResult, HoldoutResult
from minicnn.experiments.rundir import (
    MANIFEST_NAME,
    NonFiniteScoreError,
    RunDirError,
    check_manifest,
    read_json_no_follow,
    read_part,
    refuse_links,
)
from minicnn.experiments.schema import check_fold, check_folds_agree, check_holdout
from minicnn.files import atomic_write_json

CONFIG_KEYS = ("folds", "epochs", "batch_size", "seed", "limit")
"""The settings every results file records, so runs of different frameworks can be matched."""


def build_results(*, framework: str, dataset: str, versions: Mapping[str, str], config: Mapping[str, Any],
                  cv: CrossValidationResult, test: HoldoutResult, total_seconds: float) -> dict[str, Any]:
    """The results dict for one run, dated now (UTC) and stamped with this machine.

    ``versions`` names the framework's own packages (``{"minicnn": ...}`` or
    ``{"tensorflow": ..., "keras": ...}``); Python's and NumPy's are added.
    ``config`` must hold at least :data:`CONFIG_KEYS` (``limit`` None for the full data).
    """
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"build_results: config lacks {', '.join(missing)}; "
                         f"it must hold {', '.join(CONFIG_KEYS)}")
    return {
        "framework": framework,
        "dataset": dataset,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
        "config": dict(config),
        "folds": [fold.to_dict() for fold in cv.folds],
        "mean": {"loss": cv.mean_loss, "accuracy": cv.mean_accuracy,
                 "loss_std": cv.std_loss, "accuracy_std": cv.std_accuracy},
        "test": test.to_dict(),
        "total_seconds": total_seconds,
    }


def write_results(path: str | os.PathLike, results: Mapping[str, Any]) -> None:
    """Write ``results`` to ``path`` as indented JSON, atomically; ValueError on NaN or infinity."""
    _check_finite_results(results)
    atomic_write_json(path, dict(results))


def _check_finite_results(results: Mapping[str, Any]) -> None:
    scores = [fold[key] for fold in results["folds"] for key in ("loss", "accuracy")]
    scores += [results["test"]["loss"], results["test"]["accuracy"], *results["mean"].values()]
    if not all(math.isfinite(score) for score in scores):
        raise NonFiniteScoreError("refusing to write results.json with a NaN or infinite score: "
                                  "the training diverged; try a smaller learning rate")


def read_parts(directory: str | os.PathLike) -> tuple[dict[str, Any], CrossValidationResult, HoldoutResult]:
    """The run record, the folds and the test result stored in ``directory`` by a run, or several.

    ``fold_1.json`` .. ``fold_<folds>.json`` and ``test.json`` may come from different
    machines; they must all carry one run record (:mod:`minicnn.experiments.rundir`) and
    pass the schema's checks (:mod:`minicnn.experiments.schema`). RunDirError names any
    part missing, belonging to another run, or holding a wrong field, and any symbolic link.
    """
    directory = Path(directory)
    refuse_links(directory)
    test_path = directory / "test.json"
    fold_paths = sorted(directory.glob("fold_*.json"))
    if not fold_paths and not test_path.exists():
        raise RunDirError(f"{directory} holds no parts of a run (fold_<k>.json, test.json)")
    first = fold_paths[0] if fold_paths else test_path
    record = _record_of(first)
    if os.path.lexists(directory / MANIFEST_NAME):
        check_manifest(directory, record)
    config = record["config"]
    folds, epochs = config["folds"], config["epochs"]
    wanted = [directory / f"fold_{k}.json" for k in range(1, folds + 1)] + [test_path]
    missing = [path.name for path in wanted if not path.exists()]
    extra = sorted(set(fold_paths) - set(wanted))
    problems = [f"missing {', '.join(missing)}"] if missing else []
    problems += [f"unexpected {', '.join(p.name for p in extra)}"] if extra else []
    if problems:
        raise RunDirError(f"{directory} does not hold the {folds} folds and the test of one run: "
                          + "; ".join(problems))
    fold_parts = [check_fold(read_part(path, record), path, k, epochs)
                  for k, path in enumerate(wanted[:-1], start=1)]
    check_folds_agree(fold_parts, wanted[:-1])
    test = check_holdout(read_part(test_path, record), test_path, epochs)
    cv = CrossValidationResult.from_folds([FoldResult.from_dict(part) for part in fold_parts])
    return record, cv, HoldoutResult.from_dict(test)


def _record_of(path: Path) -> dict[str, Any]:
    """The run record of the part ``path``, with whole numbers of folds (>= 2) and epochs (>= 1)."""
    read_part(path)  # RunDirError if it is no part
    record = read_json_no_follow(path)["run"]
    config = record.get("config") if isinstance(record, dict) else None
    for key, minimum in (("folds", 2), ("epochs", 1)):
        value = config.get(key) if isinstance(config, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise RunDirError(f"{path}: run: config: {key}: expected a whole number >= {minimum}; "
                              f"got {value!r}")
    return record


def machine_info() -> dict[str, Any]:
    """The CPU's name, the number of logical cores and the OS platform string."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform()}


def cpu_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The "model name" line of ``cpuinfo`` (Linux), else ``platform.processor()``, else "unknown"."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
