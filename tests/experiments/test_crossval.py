"""cross_validate and fit_and_test: KFold splits, Keras' verbs, bookkeeping, fold files, errors."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from minicnn.experiments.crossval import CrossValidationResult, cross_validate, fit_and_test


class FakeModel:
    """Records what Keras' verbs were called with; x holds each sample's index, so splits are visible.

    ``evaluate`` returns ``scores`` as [loss, accuracy]; ``fit`` returns a History-like
    object with ``epochs_run`` entries per key, as NumPy floats (as some Keras versions do).
    """

    def __init__(self, scores=(0.5, 0.75), epochs_run=None):
        self.scores = list(scores)
        self.epochs_run = epochs_run
        self.fit_calls, self.evaluate_calls = [], []

    def fit(self, x, y, **kwargs):
        self.fit_calls.append((x, y, kwargs))
        n = self.epochs_run or kwargs["epochs"]
        history = {"loss": [np.float32(1.0 / (e + 1)) for e in range(n)],
                   "accuracy": [np.float64(0.1 * e) for e in range(n)]}
        return SimpleNamespace(history=history)

    def evaluate(self, x, y, **kwargs):
        self.evaluate_calls.append((x, y, kwargs))
        return self.scores


def indexed_data(n):
    """x whose rows are their own indices (N, 1), y one-hot (N, 2)."""
    return np.arange(n)[:, None], np.eye(2)[np.arange(n) % 2]


def run(n=10, n_splits=3, scores=None, **kwargs):
    """cross_validate with fake models; returns (result, models in fold order)."""
    x, y = indexed_data(n)
    models = []

    def model_fn(index):
        models.append(FakeModel(scores[index] if scores else (0.5, 0.75)))
        return models[-1]

    kwargs.setdefault("verbose", 0)
    return cross_validate(model_fn, x, y, n_splits=n_splits, **kwargs), models


def test_folds_are_sklearn_contiguous_blocks_each_held_out_once():
    result, models = run(n=10, n_splits=3, epochs=2, batch_size=4)
    val = [model.evaluate_calls[0][0][:, 0].tolist() for model in models]
    train = [model.fit_calls[0][0][:, 0].tolist() for model in models]
    assert val == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]  # KFold: the first n % k folds one larger
    for v, t in zip(val, train, strict=True):
        assert sorted(v + t) == list(range(10))
    assert [f.fold for f in result.folds] == [1, 2, 3]
    assert [(f.train_size, f.val_size) for f in result.folds] == [(6, 4), (7, 3), (7, 3)]
    assert [f.val_ranges for f in result.folds] == [[(0, 4)], [(4, 7)], [(7, 10)]]
    assert [f.train_ranges for f in result.folds] == [[(4, 10)], [(0, 4), (7, 10)], [(0, 7)]]


def test_fit_and_evaluate_get_keras_arguments():
    result, models = run(n=10, n_splits=2, epochs=3, batch_size=4, verbose=2, fit_kwargs={"seed": 7})
    x, y = indexed_data(10)
    fit_x, fit_y, fit_kwargs = models[1].fit_calls[0]
    val_x, val_y = fit_kwargs.pop("validation_data")
    assert fit_kwargs == {"batch_size": 4, "epochs": 3, "verbose": 2, "seed": 7}
    np.testing.assert_array_equal(fit_x, x[:5])
    np.testing.assert_array_equal(fit_y, y[:5])
    eval_x, eval_y, eval_kwargs = models[1].evaluate_calls[0]
    np.testing.assert_array_equal(eval_x, x[5:])
    np.testing.assert_array_equal(eval_y, y[5:])
    np.testing.assert_array_equal(val_x, eval_x)
    assert eval_kwargs == {"batch_size": 4, "verbose": 0}
    assert all(len(m.fit_calls) == len(m.evaluate_calls) == 1 for m in models)


def test_model_fn_gets_fold_indices_from_zero():
    x, y = indexed_data(9)
    seen = []
    cross_validate(lambda i: seen.append(i) or FakeModel(), x, y, n_splits=3, verbose=0)
    assert seen == [0, 1, 2]


def test_each_fold_file_is_written_as_its_fold_ends(tmp_path):
    x, y = indexed_data(9)
    out = tmp_path / "new" / "dir"
    present = []

    def model_fn(index):
        present.append(sorted(p.name for p in out.iterdir()))
        return FakeModel(scores=(index + 1.0, 0.25 * index))

    result = cross_validate(model_fn, x, y, n_splits=3, epochs=2, out_dir=out, verbose=0)
    assert present == [[], ["fold_1.json"], ["fold_1.json", "fold_2.json"]]
    saved = json.loads((out / "fold_2.json").read_text())
    assert saved.pop("run") == {}  # no record given
    assert saved == json.loads(json.dumps(result.folds[1].to_dict()))
    assert saved["fold"] == 2 and saved["loss"] == 2.0 and saved["accuracy"] == 0.25
    assert saved["val_ranges"] == [[3, 6]] and saved["train_ranges"] == [[0, 3], [6, 9]]
    assert saved["history"] == {"loss": [1.0, 0.5], "accuracy": [0.0, 0.1]}


def test_mean_and_population_std_over_folds():
    scores = [(0.1, 0.9), (0.2, 0.8), (0.6, 0.7)]
    result, _ = run(n=9, n_splits=3, scores=scores)
    assert result.mean_loss == pytest.approx(0.3)
    assert result.std_loss == pytest.approx(np.sqrt((0.04 + 0.01 + 0.09) / 3))
    assert result.mean_accuracy == pytest.approx(0.8)
    assert result.std_accuracy == pytest.approx(np.sqrt(0.02 / 3))
    as_dict = result.to_dict()
    assert as_dict["mean_accuracy"] == pytest.approx(0.8) and len(as_dict["folds"]) == 3
    assert CrossValidationResult.from_folds(result.folds) == result


def test_timings_and_history_are_plain_numbers():
    result, _ = run(n=6, n_splits=2, epochs=4)
    for fold in result.folds:
        assert 0 <= fold.fit_seconds <= fold.wall_seconds
        assert fold.seconds_per_epoch == pytest.approx(fold.fit_seconds / 4)
        assert all(type(v) is float for values in fold.history.values() for v in values)
    json.dumps(result.to_dict())  # would raise on NumPy scalars or arrays


def test_seconds_per_epoch_counts_the_epochs_that_ran():
    x, y = indexed_data(6)
    result = cross_validate(lambda i: FakeModel(epochs_run=2), x, y, n_splits=2, epochs=10, verbose=0)
    fold = result.folds[0]
    assert fold.seconds_per_epoch == pytest.approx(fold.fit_seconds / 2)


def test_scores_printed_per_fold_then_the_average(capsys):
    run(n=9, n_splits=3, scores=[(0.1, 0.9), (0.2, 0.8), (0.6, 0.7)], verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Score for fold 1: Loss = 0.1000; Accuracy = 90.000%",
        "Score for fold 2: Loss = 0.2000; Accuracy = 80.000%",
        "Score for fold 3: Loss = 0.6000; Accuracy = 70.000%",
        "Average over 3 folds: Loss = 0.3000 (± 0.2160); Accuracy = 80.000% (± 8.165%)",
    ]
    run(n=9, n_splits=3, verbose=0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_splits": 1}, r"n_splits must be an integer >= 2; got 1"),
    ({"n_splits": 2.0}, r"n_splits must be an integer >= 2; got 2.0"),
    ({"n_splits": 11}, r"n_splits=11 needs at least 11 samples; got 10"),
    ({"epochs": 0}, r"epochs must be an integer >= 1; got 0"),
    ({"batch_size": True}, r"batch_size must be an integer >= 1; got True"),
    ({"fit_kwargs": {"epochs": 3, "verbose": 0}}, r"fit_kwargs may not set epochs, verbose"),
    ({"fit_kwargs": {"validation_split": 0.1}}, r"fit_kwargs may not set validation_split"),
    ({"fit_kwargs": lambda k: {"initial_epoch": k}}, r"fit_kwargs may not set initial_epoch"),
    ({"folds": [0, 2]}, r"folds must be fold numbers in 1..5; got \[0, 2\]"),
    ({"folds": []}, r"folds must be fold numbers in 1..5; got \[\]"),
    ({"checkpoints": True}, r"checkpoints and resume need an out_dir"),
    ({"y": np.zeros(9)}, r"x has 10 samples but y has 9"),
])
def test_bad_arguments_are_rejected_by_name(kwargs, message):
    x, y = indexed_data(10)
    kwargs = {"x": x, "y": y, **kwargs}
    with pytest.raises(ValueError, match=message):
        cross_validate(lambda i: FakeModel(), kwargs.pop("x"), kwargs.pop("y"), verbose=0, **kwargs)


def test_model_fn_must_be_callable():
    x, y = indexed_data(4)
    with pytest.raises(TypeError, match="model_fn must be callable; got FakeModel"):
        cross_validate(FakeModel(), x, y, n_splits=2)


def test_a_model_without_accuracy_metric_is_a_clear_error():
    x, y = indexed_data(4)
    model = FakeModel()
    model.scores = 0.3  # what evaluate returns for a model compiled without metrics
    with pytest.raises(ValueError, match=r"metrics=\['accuracy'\]"):
        cross_validate(lambda i: model, x, y, n_splits=2, verbose=0)


def test_fit_and_test_keeps_the_test_set_out_of_fit():
    x, y = indexed_data(10)
    model = FakeModel(scores=(0.2, 0.95))
    trained, result = fit_and_test(model, x[:7], y[:7], x[7:], y[7:], epochs=2, batch_size=3, verbose=0,
                                   fit_kwargs={"seed": 1})
    assert trained is model
    (fit_x, _, fit_kwargs), = model.fit_calls
    assert fit_kwargs == {"batch_size": 3, "epochs": 2, "verbose": 0, "seed": 1}  # no validation_data
    np.testing.assert_array_equal(fit_x, x[:7])
    np.testing.assert_array_equal(model.evaluate_calls[0][0], x[7:])
    assert (result.train_size, result.test_size, result.loss, result.accuracy) == (7, 3, 0.2, 0.95)
    assert result.seconds_per_epoch == pytest.approx(result.fit_seconds / 2)
    with pytest.raises(ValueError, match="x_test/y_test 3/2"):
        fit_and_test(model, x[:7], y[:7], x[7:], y[8:])


def test_fit_kwargs_may_be_a_function_of_the_fold():
    _, models = run(n=9, n_splits=3, fit_kwargs=lambda k: {"seed": 10 + k})
    assert [m.fit_calls[0][2]["seed"] for m in models] == [10, 11, 12]


def test_folds_selects_which_folds_run():
    result, models = run(n=9, n_splits=3, folds=[3, 1])
    assert [f.fold for f in result.folds] == [1, 3]
    assert [m.evaluate_calls[0][0][:, 0].tolist() for m in models] == [[0, 1, 2], [6, 7, 8]]


RECORD = {"config": {"epochs": 2}, "data_sha256": "ab"}


def test_resume_reads_finished_folds_back_and_runs_the_rest(tmp_path):
    run(n=9, n_splits=3, epochs=2, out_dir=tmp_path, record=RECORD, folds=[2], scores=[None, (0.3, 0.6)])
    result, models = run(n=9, n_splits=3, epochs=2, out_dir=tmp_path, record=RECORD, resume=True)
    assert len(models) == 2  # folds 1 and 3 trained, fold 2 read back
    assert [m.evaluate_calls[0][0][:, 0].tolist() for m in models] == [[0, 1, 2], [6, 7, 8]]
    assert [(f.fold, f.loss) for f in result.folds] == [(1, 0.5), (2, 0.3), (3, 0.5)]
    assert json.loads((tmp_path / "fold_2.json").read_text())["run"] == RECORD


def test_a_finished_fold_is_never_overwritten_and_never_mixed_with_another_run(tmp_path):
    from minicnn.experiments.rundir import RunDirError

    run(n=9, n_splits=3, out_dir=tmp_path, record=RECORD, folds=[1])
    before = (tmp_path / "fold_1.json").read_text()
    with pytest.raises(FileExistsError, match="fold_1.json exists; pass resume=True"):
        run(n=9, n_splits=3, out_dir=tmp_path, record=RECORD)
    other = {"config": {"epochs": 3}, "data_sha256": "cd"}
    with pytest.raises(RunDirError, match=r"fold_1.json belongs to another run: epochs: 2 there, 3 here; "
                                          r"the data differ"):
        run(n=9, n_splits=3, out_dir=tmp_path, record=other, resume=True)
    assert (tmp_path / "fold_1.json").read_text() == before


@pytest.mark.parametrize("scores", [(float("nan"), 0.5), (0.5, float("inf"))])
def test_a_non_finite_score_stops_the_run_before_its_fold_file(tmp_path, scores):
    from minicnn.experiments.rundir import NonFiniteScoreError

    with pytest.raises(NonFiniteScoreError, match="training diverged; try a smaller learning rate"):
        run(n=9, n_splits=3, out_dir=tmp_path, scores=[(0.1, 0.9), scores, (0.1, 0.9)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_1.json"]


def test_a_nan_in_the_history_is_never_written(tmp_path):
    from minicnn.experiments.rundir import NonFiniteScoreError

    class Diverging(FakeModel):
        def fit(self, x, y, **kwargs):
            history = super().fit(x, y, **kwargs)
            history.history["loss"][-1] = float("nan")
            return history

    x, y = indexed_data(6)
    with pytest.raises(NonFiniteScoreError, match="fold_1.json: history: loss: refusing to write nan"):
        cross_validate(lambda k: Diverging(), x, y, n_splits=2, out_dir=tmp_path, verbose=0)
    assert list(tmp_path.iterdir()) == []


class Resumable:
    """A fake minicnn model whose state after each epoch depends on every earlier epoch, its seed and its
    order, and that can be saved, loaded and stopped (KeyboardInterrupt) before a given epoch."""

    stop_before: int | None = None
    calls: list = []

    def __init__(self, state=1.0):
        self.state = state

    def fit(self, x, y, *, epochs, initial_epoch=0, seed, batch_size, verbose, validation_data=None,
            callbacks=()):
        Resumable.calls.append((initial_epoch, epochs))
        losses, self.stop_training = [], False
        for callback in callbacks:
            callback.set_model(self)
        for epoch in range(initial_epoch, epochs):
            if epoch == Resumable.stop_before:
                raise KeyboardInterrupt
            self.state = self.state * 0.5 + seed + epoch + float(x.sum())
            losses.append(self.state)
            for callback in callbacks:
                callback.on_epoch_end(epoch)
            if self.stop_training:
                break
        return SimpleNamespace(history={"loss": losses, "val_loss": [v / 2 for v in losses]})

    def evaluate(self, x, y, **kwargs):
        return [self.state, 0.5]

    def save(self, path):
        path.write_text(json.dumps(self.state))


@pytest.fixture
def resumable(monkeypatch):
    import minicnn

    monkeypatch.setattr(minicnn, "load_model", lambda path: Resumable(json.loads(path.read_text())))
    Resumable.calls = []
    yield Resumable
    Resumable.stop_before = None


def test_an_interrupted_fold_goes_on_from_its_last_epoch(tmp_path, resumable):
    x, y = indexed_data(8)
    args = {"n_splits": 2, "epochs": 5, "verbose": 0, "record": RECORD, "checkpoints": True,
            "fit_kwargs": lambda k: {"seed": 7 * k}}
    whole = cross_validate(lambda k: Resumable(), x, y, out_dir=tmp_path / "whole", **args)
    resumable.stop_before, resumable.calls = 3, []
    with pytest.raises(KeyboardInterrupt):
        cross_validate(lambda k: Resumable(), x, y, out_dir=tmp_path / "cut", **args)
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints" / "fold_1").iterdir()) == [
        "epoch_3.json", "epoch_3.npz"]
    resumable.stop_before, resumable.calls = None, []
    resumed = cross_validate(lambda k: Resumable(), x, y, out_dir=tmp_path / "cut", resume=True, **args)
    assert resumable.calls[:2] == [(3, 5), (4, 5)]  # fold 1 from epoch 3 on, not from 0, of 5
    assert [f.history for f in resumed.folds] == [f.history for f in whole.folds]
    assert [f.loss for f in resumed.folds] == [f.loss for f in whole.folds]
    assert not (tmp_path / "cut" / "checkpoints").exists()


def test_a_checkpoint_of_another_run_is_refused(tmp_path, resumable):
    from minicnn.experiments.rundir import RunDirError

    x, y = indexed_data(8)
    args = {"n_splits": 2, "epochs": 4, "verbose": 0, "checkpoints": True, "fit_kwargs": {"seed": 1},
            "out_dir": tmp_path}
    resumable.stop_before = 2
    with pytest.raises(KeyboardInterrupt):
        cross_validate(lambda k: Resumable(), x, y, record=RECORD, **args)
    resumable.stop_before = None
    with pytest.raises(RunDirError, match="epoch_2.json belongs to another run: the data differ"):
        cross_validate(lambda k: Resumable(), x, y, record={**RECORD, "data_sha256": "ff"}, resume=True,
                       **args)


def test_checkpoints_need_a_fixed_seed(tmp_path, resumable):
    x, y = indexed_data(8)
    with pytest.raises(ValueError, match=r"checkpoints need fit_kwargs\['seed'\]"):
        cross_validate(lambda k: Resumable(), x, y, n_splits=2, out_dir=tmp_path, checkpoints=True, verbose=0)


def test_checkpoints_left_in_out_dir_need_resume(tmp_path, resumable):
    x, y = indexed_data(8)
    (tmp_path / "checkpoints" / "fold_1").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=r"fold_1 holds an earlier run's checkpoints; pass resume=True"):
        cross_validate(lambda k: Resumable(), x, y, n_splits=2, out_dir=tmp_path, checkpoints=True,
                       fit_kwargs={"seed": 1}, verbose=0)
