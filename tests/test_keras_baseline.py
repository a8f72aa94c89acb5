"""benchmarks/keras_baseline.py, run in-process on the bundled digits: a results.json like minicnn's."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason='the Keras baseline needs pip install -e ".[keras]"')

BASELINE = Path(__file__).resolve().parents[1] / "benchmarks" / "keras_baseline.py"


@pytest.fixture(scope="module")
def baseline():
    spec = importlib.util.spec_from_file_location("keras_baseline", BASELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_run_writes_the_shared_results_schema(baseline, tmp_path):
    out = tmp_path / "keras"
    returned = baseline.main(["--dataset", "digits", "--folds", "2", "--epochs", "1", "--out", str(out),
                              "--verbose", "0"])
    assert {p.name for p in out.iterdir()} == {"fold_1.json", "fold_2.json", "results.json"}
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    assert set(results) == {"framework", "dataset", "date", "machine", "versions", "config", "folds", "mean",
                            "test", "total_seconds"}
    assert (results["framework"], results["dataset"]) == ("keras", "digits")
    assert {"tensorflow", "keras"} <= set(results["versions"])
    assert {k: results["config"][k] for k in ("folds", "epochs", "batch_size", "seed", "limit")} == {
        "folds": 2, "epochs": 1, "batch_size": 128, "seed": 0, "limit": None}
    assert [f["fold"] for f in results["folds"]] == [1, 2]
    assert sum(f["val_size"] for f in results["folds"]) == 1797
    for score in (*results["folds"], results["test"]):
        assert 0.0 <= score["accuracy"] <= 1.0 and score["loss"] > 0 and score["seconds_per_epoch"] > 0
    assert set(results["folds"][0]["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
