"""examples/cifar10_cnn.py on a tiny synthetic set in CIFAR-10's binary format (written by
examples/synthetic_cifar10.py), and its Keras twin in benchmarks/ when TensorFlow is installed."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import load_model
from minicnn.datasets import load_cifar10_binary
from minicnn.experiments import cifar10

ROOT = Path(__file__).resolve().parents[1]


def module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    writer = module(ROOT / "examples" / "synthetic_cifar10.py", "synthetic_cifar10")
    return writer.write(tmp_path_factory.mktemp("cifar") / "data", per_batch=16, n_test=20)


@pytest.fixture(scope="module")
def example():
    return module(ROOT / "examples" / "cifar10_cnn.py", "cifar10_cnn")


ARGS = ["--epochs", "2", "--batch-size", "16", "--verbose", "0"]


def test_the_synthetic_set_is_in_cifar10s_binary_format(synthetic):
    (x_train, y_train), (x_test, y_test) = load_cifar10_binary(synthetic)
    assert x_train.shape == (80, 32, 32, 3) and x_test.shape == (20, 32, 32, 3) and x_train.dtype == np.uint8
    assert list(np.bincount(y_train)) == [10] * 6 + [5] * 4  # labels 0..9 in turn in each batch of 16
    means = [x_train[y_train == k].mean(axis=(0, 1, 2)) for k in range(10)]
    assert min(np.abs(a - b).max() for i, a in enumerate(means) for b in means[i + 1:]) > 5  # classes differ


def test_quick_run_writes_results_log_and_the_best_model(example, synthetic, tmp_path):
    out = tmp_path / "run"
    results = example.main(["--quick", "--binary", str(synthetic), "--out", str(out), *ARGS])
    assert {p.name for p in out.iterdir()} == {"results.json", "training_log.csv", "best_model.npz"}
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert (results["framework"], results["dataset"]) == ("minicnn", "cifar10")
    assert results["config"]["limit"] == 80  # --quick's 2,000, cut to what the set has
    fold, test = results["folds"][0], results["test"]
    assert (fold["train_size"], fold["val_size"], test["test_size"]) == (72, 8, 16)
    rows = list(csv.DictReader((out / "training_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(results["config"]["epochs_run"]))
    history = fold["history"]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(history["val_loss"])
    assert fold["loss"] == pytest.approx(min(history["val_loss"]), rel=1e-5)  # best weights restored
    best = load_model(out / "best_model.npz")  # the checkpoint of the best epoch: the same scores
    x_test, y_test = cifar10.load_data(cifar10.parse_args(["--quick", "--binary", str(synthetic),
                                                           "--out", str(tmp_path / "unused")], "test"))[2:]
    assert best.evaluate(x_test, y_test, return_dict=True)["loss"] == pytest.approx(test["loss"], rel=1e-5)


def test_missing_data_is_one_clear_message(example, tmp_path):
    with pytest.raises(SystemExit, match=r"error: .*does not exist\nNo CIFAR-10 here\? .*synthetic_cifar10"):
        example.main(["--binary", str(tmp_path / "nothing"), "--out", str(tmp_path / "run"), *ARGS])
    assert not (tmp_path / "run").exists()


def test_the_keras_twin_writes_the_same_schema(example, synthetic, tmp_path):
    pytest.importorskip("tensorflow", reason='needs pip install -e ".[keras]"')
    keras_cifar10 = module(ROOT / "benchmarks" / "keras_cifar10.py", "keras_cifar10")
    results = keras_cifar10.main(["--quick", "--binary", str(synthetic), "--out", str(tmp_path / "k"), *ARGS])
    assert results["framework"] == "keras" and results["config"]["limit"] == 80
    assert {p.name for p in (tmp_path / "k").iterdir()} == {"results.json", "training_log.csv",
                                                             "best_model.keras"}
    assert set(results["folds"][0]["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_the_example_runs_as_a_script_and_imports_only_the_package():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "cifar10_cnn.py"), "--help"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage: cifar10_cnn.py [-h] [--epochs EPOCHS] [--batch-size BATCH_SIZE]")
    assert "A small modern CNN on CIFAR-10 with minicnn" in done.stdout
    for flag in ("--seed", "--limit", "--quick", "--data-dir", "--binary", "--out", "--verbose"):
        assert flag in done.stdout
    for path in [*(ROOT / "examples").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        assert "sys.path" not in path.read_text(), f"{path.name} imports through sys.path"


def test_an_unusable_out_folder_is_one_error_line(example, synthetic, tmp_path):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "out"
    with pytest.raises(SystemExit) as stopped:
        example.main(["--quick", "--binary", str(synthetic), "--out", str(out), *ARGS])
    assert stopped.value.code == f"error: {out}: Not a directory"
