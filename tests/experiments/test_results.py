"""results.json: the shared schema's fields come from the right places; the machine is described."""

import json
import platform
from datetime import datetime

import numpy as np
import pytest

from minicnn.experiments import results
from minicnn.experiments.crossval import CrossValidationResult, FoldResult, HoldoutResult

CONFIG = {"folds": 2, "epochs": 3, "batch_size": 64, "seed": 5, "limit": None}


def fold(k, loss, accuracy):
    return FoldResult(fold=k, train_size=6, val_size=3, train_ranges=[(3, 9)], val_ranges=[(0, 3)],
                      loss=loss, accuracy=accuracy, wall_seconds=2.0, fit_seconds=1.5,
                      seconds_per_epoch=0.5, history={"loss": [1.0, 0.5, loss]})


@pytest.fixture
def run():
    cv = CrossValidationResult.from_folds([fold(1, 0.2, 0.9), fold(2, 0.4, 0.6)])
    test = HoldoutResult(train_size=8, test_size=2, loss=0.3, accuracy=0.5, fit_seconds=1.2,
                         seconds_per_epoch=0.4, history={"loss": [0.9, 0.6, 0.3]})
    return cv, test


def test_build_results_fills_the_shared_schema(run, tmp_path):
    cv, test = run
    built = results.build_results(framework="keras", dataset="mnist", versions={"keras": "3.0"},
                                  config=CONFIG, cv=cv, test=test, total_seconds=9.5)
    assert built["mean"] == {"loss": pytest.approx(0.3), "accuracy": pytest.approx(0.75),
                             "loss_std": pytest.approx(0.1), "accuracy_std": pytest.approx(0.15)}
    assert built["versions"] == {"python": platform.python_version(), "numpy": np.__version__, "keras": "3.0"}
    assert built["folds"][1]["fold"] == 2 and built["folds"][1]["accuracy"] == 0.6
    assert built["test"]["test_size"] == 2 and built["test"]["accuracy"] == 0.5
    assert (built["framework"], built["config"], built["total_seconds"]) == ("keras", CONFIG, 9.5)
    assert datetime.fromisoformat(built["date"]).utcoffset().total_seconds() == 0
    path = tmp_path / "results.json"
    results.write_results(path, built)
    assert json.loads(path.read_text()) == json.loads(json.dumps(built))


def test_config_must_hold_the_shared_keys(run):
    cv, test = run
    with pytest.raises(ValueError, match="config lacks seed, limit"):
        results.build_results(framework="minicnn", dataset="mnist", versions={},
                              config={"folds": 2, "epochs": 3, "batch_size": 64}, cv=cv, test=test,
                              total_seconds=1.0)


def test_cpu_name_from_cpuinfo_else_platform(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    assert results.cpu_name(cpuinfo) == "AMD EPYC 7B13"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert results.cpu_name(tmp_path / "missing") == "arm"
    cpuinfo.write_text("processor\t: 0\n")  # no model name line, as on some ARM machines
    assert results.cpu_name(cpuinfo) == "arm"
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert results.cpu_name(tmp_path / "missing") == "unknown"


@pytest.mark.parametrize("where", ["fold", "test"])
def test_results_with_a_nan_score_are_never_written(run, tmp_path, where):
    from minicnn.experiments.rundir import NonFiniteScoreError

    cv, test = run
    if where == "fold":
        cv = CrossValidationResult.from_folds([fold(1, float("nan"), 0.9), fold(2, 0.4, 0.6)])
    else:
        test.accuracy = float("inf")
    built = results.build_results(framework="minicnn", dataset="mnist", versions={}, config=CONFIG, cv=cv,
                                  test=test, total_seconds=1.0)
    with pytest.raises(NonFiniteScoreError, match="refusing to write results.json with a NaN or infinite"):
        results.write_results(tmp_path / "results.json", built)
    assert list(tmp_path.iterdir()) == []
