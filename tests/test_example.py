"""examples/mnist_kfold.py, run in-process on the bundled digits: every promised file, a sane results.json."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import load_model
from minicnn.experiments.evaluation import to_labels

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_kfold.py"
OUTPUTS = {"fold_1.json", "fold_2.json", "learning_curves.png", "confusion_matrix.png",
           "classification_report.txt", "misclassified.png", "final_model.npz", "results.json"}


@pytest.fixture(scope="module")
def example():
    """The example script as a module (registered while in use: its dataclass needs that)."""
    spec = importlib.util.spec_from_file_location("mnist_kfold_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def digits_run(example, tmp_path_factory):
    """One run on digits, 2 folds of 1 epoch: (output dir, the results main returned)."""
    out = tmp_path_factory.mktemp("run") / "out"
    results = example.main(["--dataset", "digits", "--folds", "2", "--epochs", "1", "--out", str(out),
                            "--verbose", "0"])
    return out, results


def test_every_promised_file_is_written(digits_run):
    out, _ = digits_run
    assert {p.name for p in out.iterdir()} == OUTPUTS
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_has_the_shared_schema(digits_run):
    out, returned = digits_run
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    assert set(results) == {"framework", "dataset", "date", "machine", "versions", "config", "folds", "mean",
                            "test", "total_seconds"}
    assert (results["framework"], results["dataset"]) == ("minicnn", "digits")
    assert results["date"].endswith("+00:00")
    assert set(results["machine"]) == {"cpu", "cores", "platform"} and results["machine"]["cores"] >= 1
    assert {"python", "numpy", "minicnn"} <= set(results["versions"])
    config = results["config"]
    assert {k: config[k] for k in ("folds", "epochs", "batch_size", "seed", "limit")} == {
        "folds": 2, "epochs": 1, "batch_size": 128, "seed": 0, "limit": None}
    folds = results["folds"]
    assert [f["fold"] for f in folds] == [1, 2]
    assert sum(f["val_size"] for f in folds) == 1797
    assert all(f["train_size"] + f["val_size"] == 1797 for f in folds)
    for f in folds:
        assert 0 <= f["accuracy"] <= 1 and f["loss"] > 0
        assert set(f["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert len(f["history"]["loss"]) == 1
        assert f["history"]["val_accuracy"][-1] == pytest.approx(f["accuracy"])
        assert 0 < f["fit_seconds"] and f["seconds_per_epoch"] == pytest.approx(f["fit_seconds"])
        assert f == json.loads((out / f"fold_{f['fold']}.json").read_text())
    accuracies = [f["accuracy"] for f in folds]
    assert results["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert results["mean"]["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert results["mean"]["loss"] == pytest.approx(np.mean([f["loss"] for f in folds]))
    test = results["test"]
    assert (test["train_size"], test["test_size"]) == (1438, 359)
    assert 0 <= test["accuracy"] <= 1 and test["loss"] > 0
    assert results["total_seconds"] >= sum(f["wall_seconds"] for f in folds) + test["fit_seconds"]


def test_saved_final_model_scores_what_results_json_says(example, digits_run):
    out, results = digits_run
    x, y = example.datasets.load_digits()
    x_test, y_test = x[-359:], y[-359:]
    predicted = to_labels(load_model(out / "final_model.npz").predict(x_test))
    assert np.mean(predicted == y_test) == pytest.approx(results["test"]["accuracy"])
    report = (out / "classification_report.txt").read_text()
    assert "359 held-out test images" in report
    assert re.search(rf"accuracy\s+{np.mean(predicted == y_test):.4f}\s+359\n", report)


def test_an_existing_nonempty_out_dir_is_refused(example, tmp_path, capsys):
    (tmp_path / "old_results.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--dataset", "digits", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"--out {tmp_path} already exists and is not an empty directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["old_results.json"]


def test_quick_presets_yield_to_explicit_flags(example, tmp_path):
    quick = example.parse_args(["--quick", "--out", str(tmp_path / "a")])
    preset = example.QUICK
    assert (quick.folds, quick.epochs, quick.limit) == (preset["folds"], preset["epochs"], preset["limit"])
    assert quick.limit < 70_000 and quick.epochs < 10
    mixed = example.parse_args(["--quick", "--folds", "3", "--out", str(tmp_path / "b")])
    assert (mixed.folds, mixed.epochs, mixed.limit) == (3, preset["epochs"], preset["limit"])
    full = example.parse_args(["--out", str(tmp_path / "c")])
    assert (full.folds, full.epochs, full.limit) == (5, 10, None)


def test_limit_cuts_cross_validation_train_and_test_sets(example, tmp_path):
    data = example.load_data(example.parse_args(["--dataset", "digits", "--limit", "700",
                                                 "--out", str(tmp_path)]))
    x, y = example.datasets.load_digits()
    assert (len(data.x_cv), len(data.x_train), len(data.x_test)) == (700, 600, 100)
    np.testing.assert_array_equal(data.x_cv, x[:700])
    np.testing.assert_array_equal(data.x_train, x[:600])
    np.testing.assert_array_equal(data.y_test, y[1438:1538])  # the test set starts after the 1438 training
    assert data.y_cv.dtype == np.int64


def test_fold_seeds_are_distinct_and_repeatable(example):
    seeds = [example.derived_seed(0, example.FOLD_SEEDS, k) for k in range(5)]
    assert len(set(seeds + [example.derived_seed(0, example.FINAL_SEED)])) == 6
    assert seeds == [example.derived_seed(0, example.FOLD_SEEDS, k) for k in range(5)]
    assert seeds != [example.derived_seed(1, example.FOLD_SEEDS, k) for k in range(5)]


def test_runs_with_the_same_seed_repeat_exactly(example, tmp_path):
    def run(seed, name):
        return example.main(["--dataset", "digits", "--limit", "350", "--folds", "2", "--epochs", "1",
                             "--seed", str(seed), "--out", str(tmp_path / name), "--verbose", "0"])

    first, again, other = run(3, "a"), run(3, "b"), run(4, "c")
    assert [f["history"] for f in first["folds"]] == [f["history"] for f in again["folds"]]
    assert first["test"]["history"] == again["test"]["history"]
    assert [f["history"] for f in first["folds"]] != [f["history"] for f in other["folds"]]
