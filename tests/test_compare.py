"""benchmarks/compare.py: the side-by-side Markdown table of two results.json files."""

import importlib.util
import json
from pathlib import Path

import pytest

COMPARE = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(framework: str, folds: list[tuple[float, float, float]], test: tuple[float, float, float],
            **config) -> dict:
    """A results dict with only what compare.py reads; folds and test as (accuracy, loss, s/epoch)."""
    accuracies = [f[0] for f in folds]
    losses = [f[1] for f in folds]
    return {
        "framework": framework,
        "dataset": "mnist",
        "config": {"folds": len(folds), "epochs": 10, "batch_size": 128, "seed": 0, "limit": None, **config},
        "folds": [{"fold": k + 1, "accuracy": acc, "loss": loss, "seconds_per_epoch": spe}
                  for k, (acc, loss, spe) in enumerate(folds)],
        "mean": {"accuracy": sum(accuracies) / len(folds), "loss": sum(losses) / len(folds),
                 "accuracy_std": 0.0005, "loss_std": 0.0012},
        "test": {"accuracy": test[0], "loss": test[1], "seconds_per_epoch": test[2]},
    }


MINICNN = results("minicnn", [(0.9912, 0.0301, 30.0), (0.9900, 0.0333, 32.0)], (0.9921, 0.0250, 36.0))
KERAS = results("keras", [(0.9915, 0.0290, 10.0), (0.9895, 0.0340, 11.0)], (0.9918, 0.0262, 12.0))


def test_table_puts_both_runs_side_by_side(compare):
    lines = compare.comparison_table(MINICNN, KERAS).splitlines()
    assert lines[:2] == ["| | minicnn | keras |", "|---|---:|---:|"]
    assert lines[2:] == [
        "| setup | " + " | ".join(["mnist, 2 folds × 10 epochs, batch 128, seed 0"] * 2) + " |",
        "| fold 1: accuracy / loss | 99.12% / 0.0301 | 99.15% / 0.0290 |",
        "| fold 2: accuracy / loss | 99.00% / 0.0333 | 98.95% / 0.0340 |",
        "| mean accuracy ± std (folds) | 99.06% ± 0.05% | 99.05% ± 0.05% |",
        "| mean loss ± std (folds) | 0.0317 ± 0.0012 | 0.0315 ± 0.0012 |",
        "| held-out test: accuracy / loss | 99.21% / 0.0250 | 99.18% / 0.0262 |",
        "| seconds per epoch (folds' mean) | 31.00 | 10.50 |",
        "| seconds per epoch (final model) | 36.00 | 12.00 |",
        "| time per epoch relative to the first | 1.00× | 0.34× |",
    ]


def test_missing_folds_show_a_dash_and_a_limit_shows_in_the_setup(compare):
    short = results("keras", [(0.95, 0.15, 3.0)], (0.96, 0.11, 4.0), limit=6000)
    rows = {label: (a, b) for label, a, b in compare.comparison_rows(MINICNN, short)}
    assert rows["fold 2: accuracy / loss"] == ("99.00% / 0.0333", compare.MISSING)
    assert rows["setup"][1].endswith(", seed 0, first 6,000 images")
    assert rows["time per epoch relative to the first"] == ("1.00×", f"{3.0 / 31.0:.2f}×")


def test_runs_of_one_framework_get_told_apart(compare):
    assert compare.column_names(MINICNN, MINICNN) == ("minicnn (A)", "minicnn (B)")


def test_protocol_differences_are_named_but_seeds_may_differ(compare):
    other = results("keras", [(0.95, 0.15, 3.0)] * 5, (0.96, 0.11, 4.0), epochs=2, seed=7)
    assert compare.protocol_differences(MINICNN, KERAS) == []
    assert compare.protocol_differences(MINICNN, other) == ["folds: 2 vs 5", "epochs: 10 vs 2"]


def test_main_prints_the_table_and_warns_on_other_protocols(compare, tmp_path, capsys):
    paths = []
    for name, r in (("a.json", MINICNN), ("b.json", results("keras", [(0.9, 0.3, 1.0)], (0.9, 0.3, 1.0)))):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(r))
    compare.main([str(p) for p in paths])
    out, err = capsys.readouterr()
    assert out == compare.comparison_table(MINICNN, json.loads(paths[1].read_text())) + "\n"
    assert err == "warning: the runs follow different protocols (folds: 2 vs 1)\n"
