"""examples/mnist_kfold.py on small data: every promised file, parts and merge, resume, bad flags and data."""

import gzip
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets, load_model
from minicnn.experiments import protocol
from minicnn.experiments.evaluation import to_labels

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist_kfold.py"
MANIFEST = ".minicnn-run.json"
OUTPUTS = {"fold_1.json", "fold_2.json", "test.json", "learning_curves.png", "confusion_matrix.png",
           "classification_report.txt", "misclassified.png", "final_model.npz", "results.json",
           "confused_pairs.png", "filters.png", "feature_maps.png", "saliency.png"}
DIGITS = ["--dataset", "digits", "--folds", "2", "--epochs", "1", "--verbose", "0"]


@pytest.fixture(scope="module")
def example():
    """The example script as a module."""
    spec = importlib.util.spec_from_file_location("mnist_kfold_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits_run(example, tmp_path_factory):
    """One run on digits, 2 folds of 1 epoch: (output dir, the results main returned)."""
    out = tmp_path_factory.mktemp("run") / "out"
    return out, example.main([*DIGITS, "--out", str(out)])


def run_script(*argv, **kwargs):
    """The example in a process of its own, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, str(EXAMPLE), *map(str, argv)], env=env, capture_output=True,
                          text=True, **kwargs)


def scores(results):
    """What must not change between runs of one configuration: every score and history."""
    return ([(f["fold"], f["loss"], f["accuracy"], f["history"]) for f in results["folds"]],
            (results["test"]["loss"], results["test"]["accuracy"], results["test"]["history"]))


def test_every_promised_file_is_written(digits_run):
    out, _ = digits_run
    # no lock, no checkpoints left; the manifest marks the folder as a run's
    assert {p.name for p in out.iterdir()} == OUTPUTS | {MANIFEST}
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_has_the_shared_schema(digits_run):
    out, returned = digits_run
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    assert set(results) == {"framework", "dataset", "date", "machine", "versions", "config", "folds", "mean",
                            "test", "total_seconds", "sessions", "threads"}
    assert (results["framework"], results["dataset"]) == ("minicnn", "digits")
    assert results["date"].endswith("+00:00")
    assert set(results["machine"]) == {"cpu", "cores", "platform"} and results["machine"]["cores"] >= 1
    assert {"python", "numpy", "minicnn"} <= set(results["versions"])
    assert results["config"] == {"dataset": "digits", "folds": 2, "epochs": 1, "batch_size": 128, "seed": 0,
                                 "limit": None, "quick": False, "learning_rate": protocol.LEARNING_RATE}
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
        part = json.loads((out / f"fold_{f['fold']}.json").read_text())
        assert part.pop("run") == {"config": results["config"], "data_sha256": part_sha(out)}
        assert f == part
    accuracies = [f["accuracy"] for f in folds]
    assert results["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert results["mean"]["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert results["mean"]["loss"] == pytest.approx(np.mean([f["loss"] for f in folds]))
    test = results["test"]
    assert (test["train_size"], test["test_size"]) == (1438, 359)
    assert 0 <= test["accuracy"] <= 1 and test["loss"] > 0
    assert results["total_seconds"] >= sum(f["wall_seconds"] for f in folds) + test["fit_seconds"]


def part_sha(out):
    from minicnn.experiments.data import load_data

    sha = load_data("digits").sha256()
    assert json.loads((out / "test.json").read_text())["run"]["data_sha256"] == sha
    return sha


def test_saved_final_model_scores_what_results_json_says(digits_run):
    out, results = digits_run
    x, y = datasets.load_digits()
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
    preset = protocol.QUICK
    assert (quick.folds, quick.epochs, quick.limit) == (preset["folds"], preset["epochs"], preset["limit"])
    assert quick.limit < 70_000 and quick.epochs < 10
    mixed = example.parse_args(["--quick", "--folds", "3", "--out", str(tmp_path / "b")])
    assert (mixed.folds, mixed.epochs, mixed.limit) == (3, preset["epochs"], preset["limit"])
    full = example.parse_args(["--out", str(tmp_path / "c")])
    assert (full.folds, full.epochs, full.limit) == (5, 10, None)


def test_limit_cuts_cross_validation_train_and_test_sets_in_proportion(example, tmp_path):
    from minicnn.experiments import cli

    data = cli.load_run_data(example.parse_args(["--dataset", "digits", "--limit", "700",
                                                 "--out", str(tmp_path)]))
    x, y = datasets.load_digits()
    assert (len(data.x_cv), len(data.x_train), len(data.x_test)) == (700, 560, 140)  # 1438 : 359
    np.testing.assert_array_equal(data.x_cv, x[:700])
    np.testing.assert_array_equal(data.x_train, x[:560])
    np.testing.assert_array_equal(data.y_test, y[1438:1578])  # the test set starts after the 1438 training
    assert data.y_cv.dtype == np.int64


def test_the_quick_limit_adapts_to_a_small_dataset_but_an_explicit_one_does_not(example, tmp_path, capsys):
    from minicnn.experiments import cli

    args = example.parse_args(["--dataset", "digits", "--quick", "--out", str(tmp_path / "a")])
    assert len(cli.load_run_data(args).x_cv) == 1797 and args.limit is None
    args = example.parse_args(["--dataset", "digits", "--limit", "5000", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match=r"^error: --limit must be between 2 and 1,797 \(the images of "
                                         r"scikit-learn's 8x8 digits\); got 5,000$"):
        cli.load_run_data(args)


def test_fold_seeds_are_distinct_and_repeatable():
    seeds = [protocol.fold_seed(0, k) for k in range(5)]
    assert len(set(seeds + [protocol.final_seed(0)] + [protocol.shuffle_seed(s) for s in seeds])) == 11
    assert seeds == [protocol.fold_seed(0, k) for k in range(5)]
    assert seeds != [protocol.fold_seed(1, k) for k in range(5)]


def test_runs_with_the_same_seed_repeat_exactly(example, tmp_path):
    def run(seed, name):
        return example.main(["--dataset", "digits", "--limit", "350", "--folds", "2", "--epochs", "1",
                             "--seed", str(seed), "--out", str(tmp_path / name), "--verbose", "0"])

    first, again, other = run(3, "a"), run(3, "b"), run(4, "c")
    assert scores(first) == scores(again)
    assert [f["history"] for f in first["folds"]] != [f["history"] for f in other["folds"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["--seed", "-1"], "--seed must be at least 0; got -1"),
    (["--folds", "1"], "--folds must be at least 2; got 1"),
    (["--epochs", "0"], "--epochs must be at least 1; got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1; got 0"),
    (["--limit", "1"], "--limit must be at least 2; got 1"),
    (["--limit", "3", "--folds", "5"], "--limit 3 leaves fewer images than --folds 5"),
    (["--jobs", "0"], "--jobs must be at least 1; got 0"),
    (["--folds", "2", "--fold", "3"], "--fold 3 is not one of the 2 folds"),
    (["--fold", "0"], "argument --fold: expected a fold number from 1 or 'final'; got '0'"),
    (["--dataset", "svhn"], "argument --dataset: expected one of mnist, fashion-mnist, cifar10, digits or "
                            "idx:DIR; got 'svhn'"),
    (["--resume", "no/such/dir"], "--resume no/such/dir: no such directory"),
    (["--merge", "no/such/dir"], "--merge no/such/dir: no such directory"),
    (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
])
def test_bad_flags_get_one_clear_line_and_write_nothing(example, tmp_path, capsys, monkeypatch, argv,
                                                        message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        example.main(argv if {"--resume", "--merge"} & set(argv) else [*argv, "--out", "out"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f": error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_no_data_is_one_message_without_traceback_and_leaves_nothing(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    done = run_script("--quick", "--out", tmp_path / "out", env={"MINICNN_DATA": str(empty)})
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot load MNIST: MNIST files missing from")
    for hint in ("--data-dir DIR", "MINICNN_DATA=DIR", "--dataset digits"):
        assert hint in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"] and list(empty.iterdir()) == []


def test_a_negative_seed_from_the_shell_is_a_usage_error_not_a_traceback(tmp_path):
    done = run_script("--seed", "-1", "--dataset", "digits", "--out", tmp_path / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.endswith("error: --seed must be at least 0; got -1\n")


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as a gzipped IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_idx_dataset_runs_quick(example, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 12)):
        images = rng.integers(0, 256, (n, 12, 12), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 3, n, dtype=np.uint8))
    results = example.main(["--dataset", f"idx:{folder}", "--quick", "--epochs", "1", "--verbose", "0",
                            "--out", str(tmp_path / "out")])
    assert results["dataset"] == "idx" and results["config"]["limit"] is None
    assert sum(f["val_size"] for f in results["folds"]) == 52 and results["test"]["test_size"] == 12
    assert load_model(tmp_path / "out" / "final_model.npz").output_shape[-1] == 3


def test_cifar10_shaped_data_runs_quick(example, tmp_path, monkeypatch):
    """CIFAR-10 as keras.datasets gives it: (N, 32, 32, 3) uint8 images, (N, 1) labels."""
    rng = np.random.default_rng(0)

    def fake_cifar10(data_dir=None, download=True):
        return ((rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (30, 1))),
                (rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (10, 1))))

    monkeypatch.setattr(datasets, "load_cifar10", fake_cifar10, raising=False)
    results = example.main(["--dataset", "cifar10", "--quick", "--epochs", "1", "--verbose", "0",
                            "--out", str(tmp_path / "out")])
    assert results["dataset"] == "cifar10" and results["test"]["test_size"] == 10
    assert load_model(tmp_path / "out" / "final_model.npz").input_shape == (32, 32, 3)


def test_parts_made_apart_merge_into_the_whole_run(example, digits_run, tmp_path):
    _, whole = digits_run
    for part in ("1", "2", "final"):
        assert example.main([*DIGITS, "--fold", part, "--out", str(tmp_path / part)]) is None
    assert {p.name for p in (tmp_path / "1").iterdir()} == {"fold_1.json", MANIFEST}
    gathered = tmp_path / "gathered"
    shutil.copytree(tmp_path / "final", gathered)
    for part in ("1", "2"):
        shutil.copy(tmp_path / part / f"fold_{part}.json", gathered)
    merged = example.main(["--merge", str(gathered)])
    assert scores(merged) == scores(whole)
    assert {p.name for p in gathered.iterdir()} == OUTPUTS | {MANIFEST}


def test_merge_names_missing_parts_and_parts_of_other_runs(example, digits_run, tmp_path):
    out, _ = digits_run
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    shutil.copy(out / "fold_1.json", gathered)
    shutil.copy(out / "test.json", gathered)
    with pytest.raises(SystemExit, match=r"^error: .* does not hold the 2 folds and the test of one run: "
                                         r"missing fold_2.json$"):
        example.main(["--merge", str(gathered)])
    example.main([*DIGITS, "--seed", "5", "--fold", "2", "--out", str(tmp_path / "other")])
    shutil.copy(tmp_path / "other" / "fold_2.json", gathered)
    with pytest.raises(SystemExit, match=r"fold_2.json belongs to another run: seed: 5 there, 0 here"):
        example.main(["--merge", str(gathered)])


def test_resume_refuses_other_flags_and_a_held_folder(example, digits_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(digits_run[0], out)
    with pytest.raises(SystemExit, match=r"another run \(.*\.minicnn-run\.json\): epochs: 1 there, 2 here"):
        example.main([*DIGITS, "--epochs", "2", "--resume", str(out)])
    from experiments.test_rundir import hold_lock

    holder = hold_lock(out)
    try:
        with pytest.raises(SystemExit, match=rf"^error: {out} is in use by another run \(pid {holder.pid} "):
            example.main([*DIGITS, "--resume", str(out)])
    finally:
        holder.kill()
        holder.wait()


def test_a_run_killed_mid_fold_resumes_to_the_same_results(example, tmp_path):
    argv = ["--dataset", "digits", "--limit", "900", "--folds", "2", "--epochs", "6", "--verbose", "0"]
    whole = example.main([*argv, "--out", str(tmp_path / "whole")])
    out = tmp_path / "cut"
    child = subprocess.Popen([sys.executable, str(EXAMPLE), *argv, "--out", str(out)],
                             env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    checkpoint = out / "checkpoints" / "fold_2" / "epoch_1.json"
    while not checkpoint.exists() and child.poll() is None:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (out / "fold_1.json").exists() and not (out / "fold_2.json").exists()  # killed within fold 2
    resumed = example.main([*argv, "--resume", str(out)])
    assert scores(resumed) == scores(whole)
    weights = [load_model(d / "final_model.npz").get_weights() for d in (tmp_path / "whole", out)]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))
    assert {p.name for p in out.iterdir()} == OUTPUTS | {MANIFEST}


def test_a_diverging_run_stops_with_a_clear_error_and_no_nan_anywhere(example, tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "LEARNING_RATE", 1e6)
    with pytest.raises(SystemExit, match=r"^error: fit: the loss is nan at epoch 1, batch \d+ of \d+: "
                                         r"training diverged. Try a smaller learning rate \(now 1e\+06\)"):
        example.main([*DIGITS, "--out", str(tmp_path)])
    # no fold file, no model with NaN weights: only the manifest that marks the folder as the run's
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [MANIFEST]


def test_quick_run_writes_tensorboard_logs_that_tensorboard_reads(example, tmp_path):
    """--tensorboard DIR: each fold's and the final model's logs, read by TensorBoard's own reader, hold
    every epoch's loss and accuracy as results.json has them, histograms and the first layer's filters."""
    pytest.importorskip("tensorboard", reason="--tensorboard needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
    from tensorboard.util import tensor_util

    def read(folder):
        accumulator = EventAccumulator(str(folder), size_guidance={TENSORS: 0})
        accumulator.Reload()
        return {tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
                for tag in accumulator.Tags()["tensors"]}

    logs = tmp_path / "logs"
    quick = ["--dataset", "digits", "--quick", "--folds", "2", "--epochs", "2", "--limit", "400"]
    results = example.main([*quick, "--verbose", "0", "--out", str(tmp_path / "out"),
                            "--tensorboard", str(logs)])
    parts = {f"fold_{fold['fold']}": fold["history"] for fold in results["folds"]}
    parts["final"] = results["test"]["history"]
    assert sorted(path.name for path in logs.iterdir()) == sorted(parts)
    for part, history in parts.items():
        train = read(logs / part / "train")
        epochs = len(history["loss"])
        assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "conv2d/kernel/histogram",
                "conv2d/kernel/gradient/histogram", "conv2d/kernel/image"} <= set(train)
        for name in ("loss", "accuracy"):
            np.testing.assert_allclose([(s, float(v)) for s, v in train[f"epoch_{name}"]],
                                       list(enumerate(history[name])), rtol=1e-6)
        assert [step for step, _ in train["conv2d/kernel/image"]] == list(range(epochs))
        if part != "final":  # the final model trains without validation data
            validation = read(logs / part / "validation")
            np.testing.assert_allclose([(s, float(v)) for s, v in validation["epoch_accuracy"]],
                                       list(enumerate(history["val_accuracy"])), rtol=1e-6)
    assert not (logs / "final" / "validation").exists()
