"""Two ``results.json`` files side by side, as one Markdown table.

    python benchmarks/compare.py runs/minicnn/results.json runs/keras/results.json

Rows: the setup, every fold's accuracy and loss, the mean ± standard deviation
over folds, the held-out test score, seconds per epoch, and the speed ratio
(the second run's seconds per epoch over the first's). The files follow the
schema of :mod:`minicnn.experiments.results`; accuracies are stored as fractions and shown
as percentages. A warning goes to stderr when the two runs' protocols differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Results = dict[str, Any]
MISSING = "—"
PROTOCOL_KEYS = ("folds", "epochs", "batch_size", "limit")
"""Settings that must match for two runs to be comparable (the seed may differ)."""


def column_names(a: Results, b: Results) -> tuple[str, str]:
    """The frameworks' names, with " (A)"/" (B)" added when both runs are of the same framework."""
    if a["framework"] == b["framework"]:
        return f"{a['framework']} (A)", f"{b['framework']} (B)"
    return a["framework"], b["framework"]


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def setup(r: Results) -> str:
    """e.g. "mnist, 5 folds × 10 epochs, batch 128, seed 0"."""
    c = r["config"]
    limit = "" if c.get("limit") is None else f", first {c['limit']:,} images"
    return (f"{r['dataset']}, {c['folds']} folds × {c['epochs']} epochs, batch {c['batch_size']}, "
            f"seed {c['seed']}{limit}")


def fold_cell(r: Results, index: int) -> str:
    """Fold ``index`` (from 0) as "accuracy / loss", or a dash if the run has no such fold."""
    if index >= len(r["folds"]):
        return MISSING
    fold = r["folds"][index]
    return f"{percent(fold['accuracy'])} / {fold['loss']:.4f}"


def mean_fold_seconds_per_epoch(r: Results) -> float:
    return sum(f["seconds_per_epoch"] for f in r["folds"]) / len(r["folds"])


def comparison_rows(a: Results, b: Results) -> list[tuple[str, str, str]]:
    """``(label, cell for a, cell for b)`` for every row of the table."""
    def both(label: str, cell: Callable[[Results], str]) -> tuple[str, str, str]:
        return label, cell(a), cell(b)

    rows = [both("setup", setup)]
    rows += [(f"fold {k + 1}: accuracy / loss", fold_cell(a, k), fold_cell(b, k))
             for k in range(max(len(a["folds"]), len(b["folds"])))]
    ratio = mean_fold_seconds_per_epoch(b) / mean_fold_seconds_per_epoch(a)
    rows += [
        both("mean accuracy ± std (folds)",
             lambda r: f"{percent(r['mean']['accuracy'])} ± {percent(r['mean']['accuracy_std'])}"),
        both("mean loss ± std (folds)", lambda r: f"{r['mean']['loss']:.4f} ± {r['mean']['loss_std']:.4f}"),
        both("held-out test: accuracy / loss",
             lambda r: f"{percent(r['test']['accuracy'])} / {r['test']['loss']:.4f}"),
        both("seconds per epoch (folds' mean)", lambda r: f"{mean_fold_seconds_per_epoch(r):.2f}"),
        both("seconds per epoch (final model)", lambda r: f"{r['test']['seconds_per_epoch']:.2f}"),
        ("time per epoch relative to the first", "1.00×", f"{ratio:.2f}×"),
    ]
    return rows


def comparison_table(a: Results, b: Results) -> str:
    """The Markdown table comparing run ``a`` with run ``b``."""
    name_a, name_b = column_names(a, b)
    lines = [f"| | {name_a} | {name_b} |", "|---|---:|---:|"]
    lines += [f"| {label} | {cell_a} | {cell_b} |" for label, cell_a, cell_b in comparison_rows(a, b)]
    return "\n".join(lines)


def protocol_differences(a: Results, b: Results) -> list[str]:
    """The dataset and protocol settings on which the two runs differ, e.g. ["epochs: 10 vs 2"]."""
    pairs = [("dataset", a["dataset"], b["dataset"])]
    pairs += [(key, a["config"].get(key), b["config"].get(key)) for key in PROTOCOL_KEYS]
    return [f"{key}: {x} vs {y}" for key, x, y in pairs if x != y]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="results.json of the first run (the speed reference)")
    parser.add_argument("second", type=Path, help="results.json of the second run")
    args = parser.parse_args(argv)
    a, b = (json.loads(path.read_text()) for path in (args.first, args.second))
    differences = protocol_differences(a, b)
    if differences:
        print(f"warning: the runs follow different protocols ({'; '.join(differences)})", file=sys.stderr)
    print(comparison_table(a, b))


if __name__ == "__main__":
    main()
